//! Server functions behind the Alerts section of Settings: the program's alert settings, a test
//! message, and the latest alerts.

// The settings form posts its fields flat (so it works without JavaScript); the macro's browser
// half of that function takes them all as arguments.
#![allow(clippy::too_many_arguments)]

use crate::error::AppError;
use herald::domain::alerts::{AlertSettingsView, AlertView};
use leptos::prelude::*;

/// The program's alert settings (admins only).
#[server(prefix = "/sfn", endpoint = "load_alert_settings", output = crate::api::JsonText)]
pub async fn load_alert_settings(program: String) -> Result<AlertSettingsView, AppError> {
    let engine = super::ssr::engine()?;
    let who = super::ssr::admin(&program)?;
    Ok(engine.alert_settings(&who).await?)
}

/// Saves the alert settings from the Settings form (flat fields, so the form works without
/// JavaScript). An empty password keeps the stored one.
#[server(prefix = "/sfn", endpoint = "save_alert_settings", output = crate::api::JsonText)]
pub async fn save_alert_settings(
    program: String,
    email_enabled: Option<String>,
    smtp_host: String,
    smtp_port: String,
    smtp_tls: String,
    smtp_username: String,
    smtp_password: String,
    from: String,
    recipients: String,
    window_minutes: String,
) -> Result<AlertSettingsView, AppError> {
    use herald::domain::alerts::{AlertSettingsDraft, SmtpTls};
    use herald::domain::ValidationError;
    let engine = super::ssr::engine()?;
    let who = super::ssr::admin(&program)?;
    let number = |field: &'static str, raw: &str, what: &str| {
        raw.trim()
            .parse::<u32>()
            .map_err(|_| ValidationError::new(field, format!("{what} must be a whole number")))
    };
    let port = number("smtp_port", &smtp_port, "SMTP port")?;
    let draft = AlertSettingsDraft {
        email_enabled: email_enabled.is_some_and(|v| v == "true" || v == "on"),
        smtp_host,
        smtp_port: u16::try_from(port)
            .map_err(|_| ValidationError::new("smtp_port", "SMTP port must be 1 to 65535"))?,
        smtp_tls: SmtpTls::parse(&smtp_tls).ok_or_else(|| {
            ValidationError::new("smtp_tls", "Choose how to secure the connection")
        })?,
        smtp_username,
        smtp_password: (!smtp_password.is_empty()).then_some(smtp_password),
        from,
        recipients,
        window_minutes: number("window_minutes", &window_minutes, "Alert window")?,
    };
    Ok(crate::components::returned::returned(
        engine.save_alert_settings(&who, &draft).await?,
    ))
}

/// E-mails a test alert with the saved settings now.
#[server(prefix = "/sfn", endpoint = "send_test_alert", output = crate::api::JsonText)]
pub async fn send_test_alert(program: String) -> Result<String, AppError> {
    let engine = super::ssr::engine()?;
    let who = super::ssr::admin(&program)?;
    Ok(crate::components::returned::returned(
        engine.send_test_alert(&who).await?,
    ))
}

/// The program's latest alerts, newest first.
#[server(prefix = "/sfn", endpoint = "list_alerts", output = crate::api::JsonText)]
pub async fn list_alerts(program: String) -> Result<Vec<AlertView>, AppError> {
    let engine = super::ssr::engine()?;
    let who = super::ssr::viewer(&program)?;
    Ok(engine.recent_alerts(&who, 50).await?)
}
