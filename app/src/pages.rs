//! One module per screen.

pub mod activity;
pub mod attempt_detail;
pub mod audit_logs;
pub mod deliveries;
pub mod event_types;
pub mod not_found;
pub mod overview;
pub mod programs;
pub mod settings;
pub mod sign_in;
pub mod transfer;
pub mod webhook_detail;
pub mod webhook_form;
pub mod webhooks;
