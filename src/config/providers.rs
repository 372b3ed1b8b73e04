//! The YAML file and the `LINKYMON_*` environment variables, as figment providers.
//!
//! They replace figment's stock readers for one reason: a value meant as text must keep the
//! spelling the user wrote. figment's environment provider turns `0123` into the number 123, and
//! a plain YAML reader reads `1.50` as the float 1.5, so a password or a meter id would silently
//! change. [`Yaml`] and [`Environment`] hand the keys listed in `TEXT_KEYS` over verbatim and
//! parse everything else as figment does.

use std::fmt;

use figment::providers::Format;
use figment::value::{Dict, Empty, Map, Value};
use figment::{Metadata, Profile, Provider};
use serde::Deserialize;
use serde::de::{self, DeserializeOwned, DeserializeSeed, Deserializer, Visitor};

use super::{ENV_PREFIX, env_var_name, join_key};

/// Keys whose value is text (strings, paths, durations, the port spec): the file and environment
/// readers pass them on exactly as written, so `password: 0123` stays `"0123"` and `interval: 0`
/// reaches the duration parser as `"0"`. A test checks that this is exactly the set of fields
/// whose deserializer asks for a string, so a new text field cannot be forgotten here.
pub(super) const TEXT_KEYS: &[&str] = &[
    "meter.port",
    "mqtt.host",
    "mqtt.username",
    "mqtt.password",
    "mqtt.password_file",
    "mqtt.ca_file",
    "mqtt.client_cert",
    "mqtt.client_key",
    "mqtt.client_id",
    "mqtt.base_topic",
    "mqtt.discovery_prefix",
    "mqtt.embedded_bind",
    "mqtt.spool_dir",
    "publish.interval",
    "publish.drain_timeout",
    "display.png_path",
    "relay.debounce",
    "logger.dir",
    "logger.pages_dir",
    "logger.timezone",
    "logger.meter",
    "logger.database",
    "logger.database_password_file",
    "logger.share_group",
    "logger.client_id",
    "logger.pages_interval",
    "logger.currency",
    "prices.currency",
];

/// The name figment shows for the environment provider; also how errors recognise it.
pub(super) const ENV_SOURCE_NAME: &str = "environment variable";

fn is_text_key(path: &str) -> bool {
    TEXT_KEYS.contains(&path)
}

/// YAML as a figment [`Format`], read with serde_norway, in which text keys keep their spelling.
///
/// `Yaml::file_exact(path)` reads a file (errors then name it), `Yaml::string(text)` a string.
/// An empty document or an empty top-level section (`relay:` with everything under it commented
/// out) means "defaults", and a key written twice is an error.
pub struct Yaml;

impl Format for Yaml {
    type Error = serde_norway::Error;

    const NAME: &'static str = "YAML";

    fn from_str<T: DeserializeOwned>(string: &str) -> Result<T, Self::Error> {
        let tree = Tree { path: "" }.deserialize(serde_norway::Deserializer::from_str(string))?;
        let tree = match tree {
            Value::Empty(..) => Value::from(Dict::new()),
            tree => tree,
        };
        T::deserialize(&tree).map_err(<serde_norway::Error as de::Error>::custom)
    }
}

/// Builds a figment [`Value`] from YAML, asking the YAML reader for the raw text at text keys.
struct Tree<'a> {
    /// Dotted path of the value being read; `""` at the top.
    path: &'a str,
}

impl<'de> DeserializeSeed<'de> for Tree<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        if is_text_key(self.path) {
            deserializer.deserialize_option(Text)
        } else {
            deserializer.deserialize_any(self)
        }
    }
}

impl<'de> Visitor<'de> for Tree<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a YAML value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::from(Empty::None))
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::from(Empty::None))
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        self.deserialize(deserializer)
    }

    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(Tree { path: self.path })? {
            items.push(item);
        }
        Ok(Value::from(items))
    }

    fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut dict = Dict::new();
        while let Some(key) = map.next_key_seed(Key)? {
            let path = join_key(self.path, &key);
            let value = map.next_value_seed(Tree { path: &path })?;
            if dict.contains_key(&key) {
                return Err(de::Error::custom(format!(
                    "key `{path}` is written twice; keep one"
                )));
            }
            let empty_section = self.path.is_empty() && matches!(value, Value::Empty(..));
            if !empty_section {
                dict.insert(key, value);
            }
        }
        Ok(Value::from(dict))
    }
}

/// Reads a mapping key as the text written, so `01:` stays `"01"`.
struct Key;

impl<'de> DeserializeSeed<'de> for Key {
    type Value = String;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<String, D::Error> {
        String::deserialize(deserializer)
    }
}

/// Reads a text value (or null) as written.
struct Text;

impl<'de> Visitor<'de> for Text {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("text")
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::from(Empty::None))
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::from(Empty::None))
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_str(Text)
    }
}

/// The `LINKYMON_*` environment variables, with `__` between levels.
///
/// Like figment's `Env`, values are parsed (`true`, `[ejp_peak,ejp_notice]`, `1.5`), except
/// at text keys, whose values are taken verbatim: `LINKYMON_MQTT__PASSWORD=0123` is `"0123"`.
/// `LINKYMON_CONFIG` names the file and is not a setting.
pub struct Environment {
    env: figment::providers::Env,
}

impl Environment {
    /// Reads the process environment when figment asks for the data, not now.
    pub fn new() -> Self {
        Environment {
            env: figment::providers::Env::prefixed(ENV_PREFIX)
                .split("__")
                .ignore(&["config"]),
        }
    }
}

impl Default for Environment {
    fn default() -> Self {
        Environment::new()
    }
}

impl Provider for Environment {
    fn metadata(&self) -> Metadata {
        Metadata::named(ENV_SOURCE_NAME)
            .interpolater(|_: &Profile, keys: &[&str]| env_var_name(&keys.join(".")))
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        let mut dict = Dict::new();
        for (key, raw) in self.env.iter() {
            let value = if is_text_key(key.as_str()) {
                Value::from(raw)
            } else {
                match raw.parse::<Value>() {
                    Ok(value) => value,
                    Err(never) => match never {},
                }
            };
            let keys: Vec<&str> = key.as_str().split('.').collect();
            insert_path(&mut dict, &keys, value);
        }
        Ok(Profile::Default.collect(dict))
    }
}

/// Puts `value` at `keys` in `dict`, creating (or replacing non-dict values with) dicts on the
/// way. Env var order is arbitrary, so a clash such as `A=1` and `A__B=2` resolves either way;
/// both cannot be meant.
fn insert_path(dict: &mut Dict, keys: &[&str], value: Value) {
    match keys {
        [] => {}
        [last] => {
            dict.insert((*last).to_string(), value);
        }
        [first, rest @ ..] => {
            let child = dict
                .entry((*first).to_string())
                .or_insert_with(|| Value::from(Dict::new()));
            if child.as_dict().is_none() {
                *child = Value::from(Dict::new());
            }
            if let Value::Dict(_, child) = child {
                insert_path(child, rest, value);
            }
        }
    }
}
