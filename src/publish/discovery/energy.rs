//! The entities named by meaning, not by label: the energy drawn and injected and the energy
//! per tariff period (what Home Assistant's energy dashboard should use: their unique ids do
//! not change when Enedis switches the meter between historic and standard mode, so their
//! statistics go on), the next tariff change (standard mode) and when tomorrow's Tempo colour
//! was announced.

use std::collections::BTreeSet;

use super::{
    Classes, Context, Contract, ENUM, Entity, Message, Mode, TOTAL_INCREASING, Tariff, Topics,
    classes, messages,
};
use crate::meter::Reading;
use crate::meter::energy::PERIODS;

/// The object ids of this module start with this one: they are never cleared as stale (a
/// period not seen since a restart, EJP's peak hours, keeps its entity and history).
pub(super) const ENERGY_PREFIX: &str = "energy_";

/// The energy leaves a reading has values for: `energy_import`, `energy_export`,
/// `energy/<period>`. The shell keeps those seen since start, as it keeps the labels.
pub fn energy_leaves(reading: &Reading) -> impl Iterator<Item = String> + '_ {
    let d = &reading.derived;
    let totals = [
        d.energy_import_wh.map(|_| "energy_import".to_owned()),
        d.energy_export_wh.map(|_| "energy_export".to_owned()),
    ];
    totals
        .into_iter()
        .flatten()
        .chain(d.energy.keys().map(|p| format!("energy/{p}")))
}

/// The configs of the entities named by meaning for meter `meter_id`: one per energy leaf in
/// `leaves` (from [`energy_leaves`]; others are ignored), the next tariff change and the
/// period it starts in standard mode, and when tomorrow's Tempo colour was announced on a
/// Tempo contract. The energy sensors are `energy`, `Wh`, `total_increasing`, with unique ids
/// `linky_<id>_energy_import`, `linky_<id>_energy_hn`… whatever the mode.
pub fn energy_config_messages<I>(
    meter_id: &str,
    mode: Mode,
    contract: &Contract,
    leaves: I,
    ctx: &Context,
) -> Vec<Message>
where
    I: IntoIterator,
    I::Item: AsRef<str>,
{
    let topics = Topics::new(&ctx.base_topic, meter_id);
    let leaves: BTreeSet<String> = leaves.into_iter().map(|l| l.as_ref().to_owned()).collect();
    let named = [
        ("energy_import".to_owned(), "Energy drawn".to_owned()),
        ("energy_export".to_owned(), "Energy injected".to_owned()),
    ];
    let periods = PERIODS.iter().map(|p| {
        (
            format!("energy/{p}"),
            format!("Energy {}", p.to_ascii_uppercase()),
        )
    });
    let mut entities: Vec<Entity> = named
        .into_iter()
        .chain(periods)
        .filter(|(leaf, _)| leaves.contains(leaf))
        .map(|(leaf, name)| Entity {
            classes: classes("energy", TOTAL_INCREASING, "Wh"),
            ..Entity::sensor(leaf.replace('/', "_"), name, topics.leaf(&leaf))
        })
        .collect();
    if mode == Mode::Standard {
        let next = topics.leaf("next_change");
        entities.push(Entity {
            classes: Classes {
                device_class: Some("timestamp"),
                ..Classes::default()
            },
            qos: 1,
            value_template: Some(timestamp_of("at")),
            ..Entity::sensor("next_change", "Next tariff change", next.clone())
        });
        entities.push(Entity {
            classes: ENUM,
            options: PERIODS.to_vec(),
            qos: 1,
            value_template: Some(
                "{{ (value_json if value_json is defined else {}).get('period') }}".to_owned(),
            ),
            ..Entity::sensor("next_period", "Next tariff period", next)
        });
    }
    if contract.tariff == Tariff::Tempo {
        entities.push(Entity {
            classes: Classes {
                device_class: Some("timestamp"),
                ..Classes::default()
            },
            qos: 1,
            value_template: Some(timestamp_of("announced")),
            ..Entity::sensor(
                "tempo_tomorrow_announced",
                "Tempo colour tomorrow announced",
                topics.leaf("tempo_tomorrow"),
            )
        });
    }
    messages(&entities, meter_id, mode, contract, ctx)
}

/// A timestamp read from key `key` of a JSON payload; unknown (`None`) when it is absent or
/// the payload is empty (`next_change` cleared: no change known).
fn timestamp_of(key: &str) -> String {
    format!(
        "{{% set j = value_json if value_json is defined else {{}} %}}\
         {{% set t = as_datetime(j.get('{key}'), None) %}}\
         {{{{ as_local(t).isoformat() if t else 'None' }}}}"
    )
}
