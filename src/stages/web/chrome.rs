//! The frame every page shares: who is logged in, the links their role
//! has (no metrics link for a viewer, who would be refused it), and the
//! time zone the page's times are in.

use super::State;
use super::access::Access;
use crate::config::Role;

pub(crate) struct Chrome {
    /// `None` when no users are configured.
    pub user: Option<String>,
    pub role: &'static str,
    /// Sees `/metrics` and every file.
    pub admin: bool,
    pub time_zone: String,
}

impl Chrome {
    pub fn of(state: &State, access: &Access) -> Chrome {
        Chrome {
            user: access.user.clone(),
            role: match access.role {
                Role::Admin => "admin",
                Role::Editor => "editor",
                Role::Viewer => "viewer",
            },
            admin: access.sees_all(),
            time_zone: state.time_zone.clone(),
        }
    }

    /// For a page drawn without a known user (an error before
    /// authentication): the links everyone has.
    pub fn anonymous(time_zone: &str) -> Chrome {
        Chrome {
            user: None,
            role: "",
            admin: false,
            time_zone: time_zone.to_owned(),
        }
    }
}
