//! The mistakes a user can make in the configuration, each displayed as one line naming the key,
//! where it was written (file or environment variable) and what would be accepted.

use std::fmt;
use std::path::PathBuf;

use figment::{Figment, Metadata, Source};

use super::providers::ENV_SOURCE_NAME;
use super::{env_var_name, join_key};

/// A configuration the user must fix. Each displays as one line naming the key or file, where
/// it was written, and what would be accepted; the binary prints it and exits with status 2.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConfigError {
    /// The file given with `-c` or `LINKYMON_CONFIG` is not there.
    #[error(
        "config file {} does not exist: create it (config.example.yaml lists every key) or name another with -c FILE or LINKYMON_CONFIG",
        path.display()
    )]
    MissingFile {
        /// The path as given.
        path: PathBuf,
    },
    /// A key that is not part of the configuration, usually a typo.
    #[error("unknown key `{key}`{}; {hint}", in_origin(origin))]
    UnknownKey {
        /// Dotted path of the key as written (`mqtt.hots`).
        key: String,
        /// Where it was written, when known.
        origin: Option<Origin>,
        /// The nearest valid key, or the list of valid ones.
        hint: String,
    },
    /// A value of the wrong kind, out of range, or in conflict with another.
    #[error("bad value for `{key}`{}: {problem}", in_origin(origin))]
    BadValue {
        /// Dotted path of the key (`mqtt.port`).
        key: String,
        /// Where the value was written, when known (not for defaults).
        origin: Option<Origin>,
        /// What is wrong and what would be accepted.
        problem: String,
    },
    /// The file could not be read or is not valid YAML.
    #[error("cannot read the configuration{}: {problem}", in_origin(origin))]
    Unreadable {
        /// The file or other source, when known.
        origin: Option<Origin>,
        /// The reader's message, with line and column for YAML syntax errors.
        problem: String,
    },
}

/// Where a setting came from, for error messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// A config file.
    File(PathBuf),
    /// An environment variable, by name (`LINKYMON_MQTT__PORT`).
    Env(String),
    /// Any other figment provider, by its name.
    Other(String),
}

impl Origin {
    fn from_metadata(metadata: &Metadata, key: &str) -> Origin {
        match &metadata.source {
            Some(Source::File(path)) => Origin::File(path.clone()),
            _ if metadata.name == ENV_SOURCE_NAME => Origin::Env(env_var_of(key)),
            _ => Origin::Other(metadata.name.to_string()),
        }
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::File(path) => write!(f, "in {}", path.display()),
            Origin::Env(var) => write!(f, "from {var}"),
            Origin::Other(name) => write!(f, "from {name}"),
        }
    }
}

/// The environment variable that set `key`: the variable of `key` itself, or of the nearest
/// section above it that is set. A list item (`led.states.0`) or a map entry comes from its
/// parent's variable (`LINKYMON_LED__STATES=[x]`), which is the one the user must fix.
fn env_var_of(key: &str) -> String {
    let mut prefix = key;
    loop {
        let var = env_var_name(prefix);
        if std::env::var_os(&var).is_some() {
            return var;
        }
        match prefix.rsplit_once('.') {
            Some((parent, _)) => prefix = parent,
            // None set (the environment changed since): the variable the key maps to.
            None => return env_var_name(key),
        }
    }
}

fn in_origin(origin: &Option<Origin>) -> String {
    origin.as_ref().map(|o| format!(" {o}")).unwrap_or_default()
}

impl ConfigError {
    /// Turns figment's error into one for people: the key's full path, the provider that set
    /// it, and for an unknown key the valid key it most resembles.
    pub(super) fn from_figment(error: figment::Error, figment: &Figment) -> ConfigError {
        // figment chains errors; the first one is enough to act on.
        let error = error.into_iter().next().unwrap_or_else(|| {
            figment::Error::from("figment reported an error without details".to_string())
        });
        let parent = error.path.join(".");
        let origin_of = |key: &str| {
            figment
                .find_metadata(key)
                .or(error.metadata.as_ref())
                .map(|metadata| Origin::from_metadata(metadata, key))
        };
        use figment::error::Kind;
        match &error.kind {
            Kind::UnknownField(field, expected) => {
                // figment's path ends with the unknown field itself; the section is before it.
                let mut section = error.path.clone();
                if section.last() == Some(field) {
                    section.pop();
                }
                let parent = section.join(".");
                let key = join_key(&parent, field);
                let origin = origin_of(&key);
                let hint = match nearest(field, expected) {
                    Some(near) => {
                        let near = join_key(&parent, near);
                        match origin {
                            Some(Origin::Env(_)) => {
                                format!("did you mean `{near}` ({})?", env_var_name(&near))
                            }
                            _ => format!("did you mean `{near}`?"),
                        }
                    }
                    None if parent.is_empty() => {
                        format!("the sections are: {}", expected.join(", "))
                    }
                    None => format!("the keys under `{parent}` are: {}", expected.join(", ")),
                };
                ConfigError::UnknownKey { key, origin, hint }
            }
            kind if parent.is_empty() => ConfigError::Unreadable {
                origin: origin_of(""),
                problem: describe(kind),
            },
            kind => ConfigError::BadValue {
                origin: origin_of(&parent),
                problem: describe_for(&parent, kind),
                key: parent,
            },
        }
    }

    /// Adds where a key was set, for errors found after extraction (validation).
    pub(super) fn located(self, figment: &Figment) -> ConfigError {
        match self {
            ConfigError::BadValue {
                key,
                origin: None,
                problem,
            } => ConfigError::BadValue {
                origin: figment
                    .find_metadata(&key)
                    .map(|metadata| Origin::from_metadata(metadata, &key)),
                key,
                problem,
            },
            other => other,
        }
    }
}

/// The valid key closest to a misspelt one, if any is close enough to be a likely typo.
fn nearest<'a>(unknown: &str, valid: &[&'a str]) -> Option<&'a str> {
    valid
        .iter()
        .map(|candidate| {
            (
                strsim::normalized_damerau_levenshtein(unknown, candidate),
                candidate,
            )
        })
        .filter(|(similarity, _)| *similarity >= 0.6)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, candidate)| *candidate)
}

/// Keys whose valid range is narrower than their type's, as users should read it when the
/// value does not even fit the type (`meter.voltage: 100000` overflows a u16, but the answer
/// is 100 to 400, not 0 to 65535). Validation checks the same ranges on values that fit.
const KEY_RANGES: &[(&str, &str)] = &[("meter.voltage", "a whole number of volts from 100 to 400")];

/// [`describe`], with the key's own range when it has one (see [`KEY_RANGES`]).
fn describe_for(key: &str, kind: &figment::error::Kind) -> String {
    use figment::error::Kind;
    let range = KEY_RANGES
        .iter()
        .find(|(k, _)| *k == key)
        .map(|(_, range)| *range);
    match (kind, range) {
        (Kind::InvalidType(actual, _) | Kind::InvalidValue(actual, _), Some(range)) => {
            format!("found {actual}, expected {range}")
        }
        _ => describe(kind),
    }
}

/// figment's error kinds in words a user acts on (`expected u16` → a number range).
fn describe(kind: &figment::error::Kind) -> String {
    use figment::error::Kind;
    match kind {
        Kind::Message(message) => message.clone(),
        Kind::InvalidType(actual, expected) | Kind::InvalidValue(actual, expected) => {
            format!("found {actual}, expected {}", expected_in_words(expected))
        }
        Kind::UnknownVariant(found, allowed) => {
            let allowed: Vec<String> = allowed.iter().map(|v| format!("`{v}`")).collect();
            format!("`{found}` is not one of {}", allowed.join(", "))
        }
        other => other.to_string(),
    }
}

fn expected_in_words(expected: &str) -> String {
    let range = |min: i128, max: i128| format!("a whole number from {min} to {max}");
    match expected {
        "u8" => range(0, u8::MAX.into()),
        "u16" => range(0, u16::MAX.into()),
        "u32" => range(0, u32::MAX.into()),
        "u64" => range(0, u64::MAX.into()),
        "i64" => range(i64::MIN.into(), i64::MAX.into()),
        "f64" | "f32" => "a number".into(),
        // bytesize's own word for `spool_max`.
        "parsable string" => "a size like 64MiB or 500kB".into(),
        // Serde names our section types (`struct MqttConfig`); users know them as sections.
        other if other.starts_with("struct ") => "a section of keys".into(),
        other => other.to_string(),
    }
}

/// A value error for `key`; loading adds where the key was written.
pub(super) fn bad_value(key: &str, problem: String) -> ConfigError {
    ConfigError::BadValue {
        key: key.into(),
        origin: None,
        problem,
    }
}
