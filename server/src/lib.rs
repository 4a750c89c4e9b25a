//! The `herald` server as a library, so integration tests start the real application
//! (`startup::Application`) on port 0 exactly as the binary does.

pub mod api;
pub mod bench;
pub mod cli;
pub mod config;
pub mod console;
pub mod csv_export;
pub mod listen;
pub mod metrics;
pub mod relay_floor;
pub mod seed;
pub mod startup;
pub mod telemetry;
pub mod watchdog;
