//! The Home Assistant entities of the logger's `<base>/<id>/season` message: the EJP days,
//! or the Tempo red and white days, used and left this season. On the meter's one device,
//! like the `today` entities.

use super::{Classes, Context, Contract, Entity, messages};
use crate::logger::season::Kind;
use crate::publish::Message;
use crate::publish::topics::Topics;
use crate::tic::Mode;

/// The configs of the season's counters for a contract of `kind`.
pub fn season_config_messages(
    meter_id: &str,
    mode: Mode,
    contract: &Contract,
    kind: Kind,
    ctx: &Context,
) -> Vec<Message> {
    let topic = Topics::new(&ctx.base_topic, meter_id).leaf("season");
    let counters: &[(&str, &str, &str)] = match kind {
        Kind::Ejp => &[
            ("ejp.used", "season_ejp_used", "EJP days used this season"),
            ("ejp.left", "season_ejp_left", "EJP days left this season"),
        ],
        Kind::Tempo => &[
            (
                "tempo.red.used",
                "season_red_used",
                "Tempo red days used this season",
            ),
            (
                "tempo.red.left",
                "season_red_left",
                "Tempo red days left this season",
            ),
            (
                "tempo.white.used",
                "season_white_used",
                "Tempo white days used this season",
            ),
            (
                "tempo.white.left",
                "season_white_left",
                "Tempo white days left this season",
            ),
        ],
    };
    let entities: Vec<Entity> = counters
        .iter()
        .map(|(path, object_id, name)| Entity {
            // A count of days: no device class fits; a measurement, so history is a graph.
            classes: Classes {
                device_class: None,
                state_class: Some("measurement"),
                unit: None,
            },
            unit_text: Some("days".to_owned()),
            qos: 1,
            precision: Some(0),
            value_template: Some(format!("{{{{ value_json.{path} }}}}")),
            // The logger's figures stay true while the meter's line is silent.
            follows_line: false,
            ..Entity::sensor(*object_id, *name, topic.clone())
        })
        .collect();
    messages(&entities, meter_id, mode, contract, ctx)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::publish::discovery::Tariff;
    use serde_json::Value;

    #[test]
    fn tempo_counters_are_four_entities_reading_the_season_message_on_the_meters_device() {
        let ctx = Context::new("linky", "homeassistant");
        let contract = Contract {
            tariff: Tariff::Tempo,
            three_phase: false,
            producer: false,
            tic_version: None,
        };
        let messages =
            season_config_messages("021861348497", Mode::Historic, &contract, Kind::Tempo, &ctx);
        let configs: Vec<Value> = messages
            .iter()
            .map(|m| serde_json::from_str(&m.payload).unwrap())
            .collect();
        let ids: Vec<&str> = configs
            .iter()
            .map(|c| c["unique_id"].as_str().unwrap())
            .collect();
        assert_eq!(
            ids,
            [
                "linky_021861348497_season_red_used",
                "linky_021861348497_season_red_left",
                "linky_021861348497_season_white_used",
                "linky_021861348497_season_white_left",
            ]
        );
        assert!(messages.iter().all(|m| m.retain && m.qos == 1));
        let red_left = &configs[1];
        assert_eq!(red_left["state_topic"], "linky/021861348497/season");
        assert_eq!(
            red_left["value_template"],
            "{{ value_json.tempo.red.left }}"
        );
        assert_eq!(red_left["unit_of_measurement"], "days");
        assert_eq!(red_left["device"]["identifiers"][0], "linky_021861348497");
        assert_eq!(
            red_left["availability_topic"], "linky/021861348497/availability",
            "not unavailable while the meter's line is silent"
        );
    }
}
