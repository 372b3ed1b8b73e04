//! Topic names of the contract (§3), in one place.

/// The topics of one meter under the base topic: `<base>/<id>/…`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topics {
    prefix: String,
}

impl Topics {
    /// Topics of meter `id` under `base` (`mqtt.base_topic`).
    pub fn new(base: &str, id: &str) -> Self {
        Topics {
            prefix: format!("{base}/{id}"),
        }
    }

    /// `online` / `offline`, retained; also the Last Will.
    pub fn availability(&self) -> String {
        format!("{}/availability", self.prefix)
    }

    /// The JSON of each published frame.
    pub fn state(&self) -> String {
        format!("{}/state", self.prefix)
    }

    /// One retained topic per label; MQTT forbids `+` in names, so it becomes `_`.
    pub fn label(&self, label: &str) -> String {
        format!("{}/{}", self.prefix, label_topic_name(label))
    }

    /// A topic directly under the meter (`injection`, `power`, `ejp`, `ejp_notice`, `relay`,
    /// `line`, `diag`, `today`).
    pub fn leaf(&self, leaf: &str) -> String {
        format!("{}/{leaf}", self.prefix)
    }
}

/// `<base>/bridge/state`: `online` while a daemon runs on base topic `base`, meter heard or
/// not; `offline` when it stopped (said at a clean stop, and its Last Will otherwise).
pub fn bridge_state(base: &str) -> String {
    format!("{base}/bridge/state")
}

/// The topic segment of a TIC label: `NJOURF+1` → `NJOURF_1`. Also used for entity ids.
pub fn label_topic_name(label: &str) -> String {
    label.replace('+', "_")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plus_in_a_label_becomes_an_underscore() {
        let t = Topics::new("linky", "021728123456");
        assert_eq!(t.label("NJOURF+1"), "linky/021728123456/NJOURF_1");
        assert_eq!(t.label("SMAXSN-1"), "linky/021728123456/SMAXSN-1");
        assert_eq!(t.availability(), "linky/021728123456/availability");
        assert_eq!(t.leaf("ejp"), "linky/021728123456/ejp");
        assert_eq!(bridge_state("linky"), "linky/bridge/state");
    }
}
