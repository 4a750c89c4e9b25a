//! Domain types shared by the server and the browser: ids, the event catalog, webhook settings and
//! payload filters. Everything here is plain data with validating constructors, so an invalid value
//! cannot be built, and nothing here touches a database, the network or the clock's side effects.

pub mod account;
pub mod alerts;
pub mod catalog;
pub mod delivery;
pub mod event;
pub mod filter;
pub mod headers;
pub mod ids;
pub mod insights;
pub mod query;
pub mod replay;
pub mod schema;
pub mod settings;
pub mod snippets;
pub mod transfer;
pub mod validation;
pub mod views;
pub mod webhook;

pub use validation::ValidationError;
