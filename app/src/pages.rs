//! One module per screen.

pub mod audit_logs;
pub mod event_types;
pub mod not_found;
pub mod settings;
pub mod webhooks;
