//! Every integration test of the `herald` binary, in one test binary: each file below is a module
//! of it, sharing `helpers`. One binary instead of one per file compiles the helpers and the
//! generic code they pull in once and links once: the test build of a fresh `make test` spent
//! most of 1 min 40 s compiling and linking 21 copies. cargo-nextest still runs every test in a
//! process of its own, so tests keep their own globals (metric recorders, the environment).

#[macro_use]
mod helpers;

mod access;
mod accounts;
mod alerts;
mod api;
mod bulk_replay;
mod crash;
mod delivery;
mod engine;
mod faults;
mod fuzz;
mod headers;
mod holding;
mod insights;
mod listen;
mod ordering;
mod postgres_ops;
mod retention;
mod snippets;
mod soak;
mod sqlite_full;
mod transfer;
