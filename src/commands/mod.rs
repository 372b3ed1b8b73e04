//! One wiring file per subcommand: it opens what the configuration names, starts the tasks
//! and stops them cleanly. The work is done in the modules it wires together.

pub mod decode;
pub mod demo;
pub mod graph;
pub mod logger;
pub mod run;
