//! linkymon: the French Linky meter's TIC output, decoded and published over MQTT.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod config;
