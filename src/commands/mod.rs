//! One wiring file per subcommand: the thin shell that does the I/O around the pure core.

pub mod decode;
pub mod demo;
pub mod graph;
pub mod logger;
pub mod run;
