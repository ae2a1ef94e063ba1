//! Who sees what. The authentication middleware puts the user's [`Access`]
//! into the request; every handler that reaches data takes it, and reaches
//! files only through `State::index` and `State::entry`, which filter by
//! it. A file outside a user's groups is answered exactly like a file that
//! does not exist: same status, same message (no existence oracle).
//!
//! A viewer or editor sees a file only if *every* series it holds matches
//! one of their groups' filters: a janitoo-style file with several series
//! would otherwise show the others in its graphs and exports. An admin,
//! and everyone when no users are configured, sees everything.

use std::future::{Ready, ready};
use std::sync::Arc;

use actix_web::{FromRequest, HttpMessage, HttpRequest, dev::Payload, web};

use super::State;
use crate::config::{Dashboard, Role, WebGroup, WebUser};
use crate::rrd::index::IndexEntry;

/// What one request's user may see and do.
#[derive(Debug, Clone)]
pub(crate) struct Access {
    /// `None` when no users are configured.
    pub user: Option<String>,
    pub role: Role,
    /// The user's groups and their series filters (unused for an admin).
    groups: Arc<[String]>,
    filters: Arc<[String]>,
}

impl Access {
    /// No users configured: everything, as before users existed.
    pub fn everything() -> Access {
        Access {
            user: None,
            role: Role::Admin,
            groups: Arc::new([]),
            filters: Arc::new([]),
        }
    }

    pub fn of(user: &WebUser, groups: &[WebGroup]) -> Access {
        let filters: Vec<String> = groups
            .iter()
            .filter(|g| user.groups.contains(&g.name))
            .flat_map(|g| g.series.iter().cloned())
            .collect();
        Access {
            user: Some(user.name.clone()),
            role: user.role,
            groups: user.groups.clone().into(),
            filters: filters.into(),
        }
    }

    pub fn in_group(&self, group: &str) -> bool {
        self.groups.iter().any(|g| g == group)
    }

    pub fn sees_all(&self) -> bool {
        self.role == Role::Admin
    }

    pub fn sees_series(&self, series: &str) -> bool {
        self.sees_all() || self.filters.iter().any(|f| rumqttc::matches(series, f))
    }

    /// Every series of the file, or it is hidden.
    pub fn sees_file(&self, entry: &IndexEntry) -> bool {
        self.sees_all()
            || (!entry.ds.is_empty() && entry.ds.iter().all(|d| self.sees_series(&d.series)))
    }

    /// A dashboard shared with some groups is for their members (and
    /// admins); one shared with none, for everyone. Either way, its series
    /// are filtered like any other.
    pub fn sees_dashboard(&self, dashboard: &Dashboard) -> bool {
        self.sees_all()
            || dashboard.groups.is_empty()
            || dashboard.groups.iter().any(|g| self.groups.contains(g))
    }
}

/// The request's access, as the authentication middleware set it; with no
/// users configured, everything.
impl FromRequest for Access {
    type Error = actix_web::Error;
    type Future = Ready<Result<Access, actix_web::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        if let Some(access) = req.extensions().get::<Access>() {
            return ready(Ok(access.clone()));
        }
        let open = req
            .app_data::<web::Data<State>>()
            .is_some_and(|s| !s.users.enabled());
        ready(if open {
            Ok(Access::everything())
        } else {
            // Only reachable for a route outside the authenticated scope.
            Err(actix_web::error::ErrorUnauthorized(
                "authentication required",
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rrd::index::IndexDs;

    fn user(role: Role, groups: &[&str]) -> WebUser {
        WebUser {
            name: "u".into(),
            password_hash: String::new(),
            role,
            groups: groups.iter().map(|g| g.to_string()).collect(),
        }
    }

    fn file(series: &[&str]) -> IndexEntry {
        IndexEntry {
            ds: series
                .iter()
                .map(|s| IndexDs {
                    series: s.to_string(),
                    ..IndexDs::default()
                })
                .collect(),
            ..IndexEntry::default()
        }
    }

    #[test]
    fn a_file_is_seen_only_when_all_its_series_are() {
        let groups = [
            WebGroup {
                name: "kitchen".into(),
                series: vec!["z2m/kitchen/#".into(), "tele/+/kitchen".into()],
            },
            WebGroup {
                name: "garage".into(),
                series: vec!["z2m/garage/#".into()],
            },
        ];
        let viewer = Access::of(&user(Role::Viewer, &["kitchen"]), &groups);
        assert!(viewer.sees_file(&file(&["z2m/kitchen/temperature"])));
        assert!(viewer.sees_file(&file(&["tele/plug/kitchen", "z2m/kitchen/h"])));
        assert!(!viewer.sees_file(&file(&["z2m/garage/temperature"])));
        assert!(!viewer.sees_file(&file(&["z2m/kitchen/t", "z2m/garage/t"])));
        assert!(!viewer.sees_file(&file(&[])), "nothing to match");
        assert!(!viewer.sees_series("z2m/kitchenette/t"));
        let admin = Access::of(&user(Role::Admin, &[]), &groups);
        assert!(admin.sees_file(&file(&["z2m/garage/temperature"])));
        assert!(Access::everything().sees_file(&file(&["anything"])));
    }

    #[test]
    fn dashboards_shared_with_groups_are_for_their_members() {
        let groups = [WebGroup {
            name: "kitchen".into(),
            series: vec!["#".into()],
        }];
        let shared = |g: &[&str]| Dashboard {
            name: "d".into(),
            title: "d".into(),
            range: "day".into(),
            views: Vec::new(),
            groups: g.iter().map(|g| g.to_string()).collect(),
        };
        let viewer = Access::of(&user(Role::Viewer, &["kitchen"]), &groups);
        assert!(viewer.sees_dashboard(&shared(&[])));
        assert!(viewer.sees_dashboard(&shared(&["kitchen"])));
        assert!(!viewer.sees_dashboard(&shared(&["garage"])));
        let admin = Access::of(&user(Role::Admin, &[]), &groups);
        assert!(admin.sees_dashboard(&shared(&["garage"])));
    }
}
