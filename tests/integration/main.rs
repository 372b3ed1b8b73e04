//! The integration tests: one binary, run against the library and the real executable.

mod support;

mod bad_input;
mod baud;
mod broker;
mod corpus;
mod daemon;
mod decode_cli;
mod demo;
mod edges;
mod energy;
mod fleet;
mod ha_templates;
mod hostile_broker;
mod kit;
mod labels;
mod line;
mod logger;
mod logger_hostile;
mod node_red;
mod outage;
mod pages;
mod prices;
mod the_box;
mod tls;
