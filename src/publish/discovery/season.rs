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
            ..Entity::sensor(*object_id, *name, topic.clone())
        })
        .collect();
    messages(&entities, meter_id, mode, contract, ctx)
}
