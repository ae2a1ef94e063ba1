//! The file's sections, each deserialised apart so that all of their
//! errors are found in one pass (serde stops at a section's first). Every
//! section is named once, in [`sections!`]: a new `[section]` is its raw
//! type in `raw.rs`, a line here, its check in `validate/`, and its field
//! in [`Config`](super::Config).

use serde::de::DeserializeOwned;

use super::KeyError;
use super::raw;

/// Declares [`Sections`] and how a TOML table is split into them: tables
/// (`[name]`, a default when absent) and arrays of tables (`[[name]]`,
/// `None` for an item that did not deserialise, already reported).
macro_rules! sections {
    (
        tables { $($table:ident: $table_ty:ty,)* }
        arrays { $($array:ident from $array_key:literal: $array_ty:ty,)* }
    ) => {
        pub(crate) struct Sections {
            /// What is left: top-level scalars (`data_dir`…).
            pub top: raw::RawTop,
            $(pub $table: $table_ty,)*
            $(pub $array: Vec<Option<$array_ty>>,)*
        }

        impl Sections {
            pub(super) fn split(mut table: toml::Table, errors: &mut Vec<KeyError>) -> Sections {
                $(let $table = section(&mut table, stringify!($table), errors);)*
                $(let $array = match table.remove($array_key) {
                    None => Vec::new(),
                    Some(v) => array_items(v, $array_key, errors),
                };)*
                let top = deserialize(toml::Value::Table(table), TOP, errors).unwrap_or_default();
                Sections { top, $($table,)* $($array,)* }
            }
        }
    };
}

sections! {
    tables {
        mqtt: raw::RawMqtt,
        embedded_broker: raw::RawEmbeddedBroker,
        cache: raw::RawCache,
        journal: raw::RawJournal,
        clock: raw::RawClock,
        limits: raw::RawLimits,
        web: raw::RawWeb,
        energy: raw::RawEnergy,
    }
    arrays {
        templates from "template": raw::RawTemplate,
        files from "file": raw::RawFile,
        rules from "rule": raw::RawRule,
        dashboards from "dashboard": raw::RawDashboard,
        dashboard_rules from "dashboard_rule": raw::RawDashboardRule,
        polls from "poll": raw::RawPoll,
    }
}

fn section<T: DeserializeOwned + Default>(
    table: &mut toml::Table,
    key: &str,
    errors: &mut Vec<KeyError>,
) -> T {
    match table.remove(key) {
        None => T::default(),
        Some(v) => deserialize(v, key, errors).unwrap_or_default(),
    }
}

fn array_items<T: DeserializeOwned>(
    value: toml::Value,
    key: &str,
    errors: &mut Vec<KeyError>,
) -> Vec<Option<T>> {
    match value {
        toml::Value::Array(items) => items
            .into_iter()
            .enumerate()
            .map(|(i, item)| deserialize(item, &format!("{key}[{i}]"), errors))
            .collect(),
        _ => {
            errors.push(KeyError {
                key: key.into(),
                message: format!("must be an array of tables ([[{key}]])"),
            });
            Vec::new()
        }
    }
}

fn deserialize<T: DeserializeOwned>(
    value: toml::Value,
    key: &str,
    errors: &mut Vec<KeyError>,
) -> Option<T> {
    let whole = match value.clone().try_into() {
        Ok(t) => return Some(t),
        Err(e) => {
            let e: toml::de::Error = e;
            e.message().trim().to_owned()
        }
    };
    // Serde's message names the type, not always the key: try each key
    // alone to say which ones are wrong.
    let mut pinpointed = false;
    if let toml::Value::Table(table) = value {
        for (k, v) in table {
            let single = toml::Value::Table(toml::Table::from_iter([(k.clone(), v)]));
            if let Err(e) = single.try_into::<T>() {
                let message = e.message().trim().to_owned();
                if !message.starts_with("missing field") {
                    let full_key = if key == TOP { k } else { format!("{key}.{k}") };
                    errors.push(KeyError {
                        key: full_key,
                        message,
                    });
                    pinpointed = true;
                }
            }
        }
    }
    if !pinpointed {
        errors.push(KeyError {
            key: key.into(),
            message: whole,
        });
    }
    None
}

const TOP: &str = "(top level)";
