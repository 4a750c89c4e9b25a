//! Alerts: what Herald tells a program's people when deliveries go wrong, and how it reaches them.
//!
//! Four kinds, each also an operational event type a webhook can subscribe to
//! (`delivery.exhausted`, `endpoint.disabled`, `endpoint.recovered`, `endpoint.flagged` for an
//! insight flag), and optionally e-mail over SMTP. Alerts are grouped: a burst of failures on one webhook makes one message per webhook and
//! kind per window, counting what it stands for. The settings here are validated by the same code
//! in the console (wasm) and on the server.

use super::ValidationError;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

super::delivery::str_enum!(
    /// What an alert is about.
    AlertKind {
        Exhausted => "delivery.exhausted" / "Deliveries dead-lettered",
        Disabled => "endpoint.disabled" / "Webhook switched off",
        Recovered => "endpoint.recovered" / "Webhook recovered",
        Flagged => "endpoint.flagged" / "Webhook flagged",
    }
);

impl AlertKind {
    /// The operational event type that carries this alert to subscribed webhooks.
    pub fn event_type(self) -> &'static str {
        self.as_str()
    }
}

super::delivery::str_enum!(
    /// How the connection to the SMTP server is secured.
    SmtpTls {
        StartTls => "starttls" / "STARTTLS (port 587)",
        Tls => "tls" / "TLS from the start (port 465)",
        None => "none" / "None (a relay on a trusted network)",
    }
);

/// Alert settings as the console and the API send them. The password is kept when left out.
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertSettingsDraft {
    /// Send alerts by e-mail (operational webhooks get them either way).
    #[serde(default)]
    pub email_enabled: bool,
    #[serde(default)]
    pub smtp_host: String,
    #[serde(default = "default_port")]
    pub smtp_port: u16,
    #[serde(default = "default_tls")]
    pub smtp_tls: SmtpTls,
    /// Left empty: no authentication.
    #[serde(default)]
    pub smtp_username: String,
    /// A new password; `null` keeps the stored one.
    #[serde(default)]
    pub smtp_password: Option<String>,
    #[serde(default)]
    pub from: String,
    /// Addresses separated by commas, semicolons or line breaks.
    #[serde(default)]
    pub recipients: String,
    /// At most one message per webhook and kind in this many minutes (later ones are counted into
    /// the next).
    #[serde(default = "default_window")]
    #[cfg_attr(feature = "server", schema(minimum = 1, maximum = 1440))]
    pub window_minutes: u32,
}

fn default_port() -> u16 {
    587
}

fn default_tls() -> SmtpTls {
    SmtpTls::StartTls
}

fn default_window() -> u32 {
    60
}

impl Default for AlertSettingsDraft {
    fn default() -> Self {
        Self {
            email_enabled: false,
            smtp_host: String::new(),
            smtp_port: default_port(),
            smtp_tls: default_tls(),
            smtp_username: String::new(),
            smtp_password: None,
            from: String::new(),
            recipients: String::new(),
            window_minutes: default_window(),
        }
    }
}

/// Validated alert settings (the password stays outside: it is sealed on its own).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertSettings {
    pub email_enabled: bool,
    pub smtp_host: String,
    pub smtp_port: u16,
    pub smtp_tls: SmtpTls,
    pub smtp_username: String,
    pub from: String,
    pub recipients: Vec<String>,
    pub window_minutes: u32,
}

impl Default for AlertSettings {
    fn default() -> Self {
        AlertSettingsDraft::default()
            .validate()
            .expect("the defaults are valid")
    }
}

impl AlertSettingsDraft {
    /// Checks every field, naming the first that is wrong. E-mail fields are required only when
    /// e-mail is on.
    pub fn validate(&self) -> Result<AlertSettings, ValidationError> {
        if !(1..=1_440).contains(&self.window_minutes) {
            return Err(ValidationError::new(
                "window_minutes",
                "Alert window must be between 1 and 1440 minutes",
            ));
        }
        let host = self.smtp_host.trim();
        let from = self.from.trim();
        let recipients = split_addresses(&self.recipients);
        // Kept whether or not e-mail is on, so checked either way: no field holds a control
        // character (an SMTP server would refuse it, and PostgreSQL cannot store NUL), except
        // the line breaks between recipients.
        use super::validation::no_control_characters as plain;
        plain("smtp_host", "SMTP host", &self.smtp_host, &[])?;
        plain("smtp_username", "SMTP user name", &self.smtp_username, &[])?;
        let password = self.smtp_password.as_deref().unwrap_or("");
        plain("smtp_password", "SMTP password", password, &[])?;
        plain("from", "From", &self.from, &[])?;
        plain("recipients", "Recipients", &self.recipients, &['\n', '\r'])?;
        if self.email_enabled {
            if host.is_empty() || host.contains(char::is_whitespace) || host.contains('/') {
                return Err(ValidationError::new(
                    "smtp_host",
                    "SMTP host is required (a host name or address, no scheme)",
                ));
            }
            if self.smtp_port == 0 {
                return Err(ValidationError::new(
                    "smtp_port",
                    "SMTP port must be 1 to 65535",
                ));
            }
            if !is_address(from) {
                return Err(ValidationError::new(
                    "from",
                    "From must be an e-mail address such as herald@example.com",
                ));
            }
            if recipients.is_empty() {
                return Err(ValidationError::new(
                    "recipients",
                    "Add at least one recipient",
                ));
            }
        }
        if let Some(bad) = recipients.iter().find(|a| !is_address(a)) {
            return Err(ValidationError::new(
                "recipients",
                format!("{bad} is not an e-mail address"),
            ));
        }
        Ok(AlertSettings {
            email_enabled: self.email_enabled,
            smtp_host: host.to_owned(),
            smtp_port: self.smtp_port,
            smtp_tls: self.smtp_tls,
            smtp_username: self.smtp_username.trim().to_owned(),
            from: from.to_owned(),
            recipients,
            window_minutes: self.window_minutes,
        })
    }
}

/// The addresses in a comma-, semicolon- or line-separated list, trimmed, empty ones dropped.
pub fn split_addresses(list: &str) -> Vec<String> {
    list.split([',', ';', '\n'])
        .map(str::trim)
        .filter(|a| !a.is_empty())
        .map(str::to_owned)
        .collect()
}

/// A plain `local@domain` address (the SMTP library checks the finer points when sending).
fn is_address(a: &str) -> bool {
    match a.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && !domain.is_empty()
                && !domain.contains('@')
                && !a.contains(char::is_whitespace)
                && !a.contains(['<', '>', ','])
        }
        None => false,
    }
}

/// Alert settings as the console shows them: the password only as "set or not".
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertSettingsView {
    pub email_enabled: bool,
    pub smtp_host: String,
    pub smtp_port: u16,
    pub smtp_tls: SmtpTls,
    pub smtp_username: String,
    pub smtp_password_set: bool,
    pub from: String,
    pub recipients: Vec<String>,
    pub window_minutes: u32,
}

impl AlertSettingsView {
    pub fn new(s: AlertSettings, password_set: bool) -> Self {
        Self {
            email_enabled: s.email_enabled,
            smtp_host: s.smtp_host,
            smtp_port: s.smtp_port,
            smtp_tls: s.smtp_tls,
            smtp_username: s.smtp_username,
            smtp_password_set: password_set,
            from: s.from,
            recipients: s.recipients,
            window_minutes: s.window_minutes,
        }
    }
}

/// One alert as the console lists it: a group of occurrences on one webhook.
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertView {
    pub id: String,
    pub kind: AlertKind,
    pub webhook_id: String,
    pub webhook_name: String,
    /// Occurrences grouped into this alert (e.g. deliveries dead-lettered).
    pub count: i64,
    pub first_at: DateTime<Utc>,
    pub last_at: DateTime<Utc>,
    /// The latest occurrence in words (its error, or why the webhook was switched off).
    pub detail: String,
    /// When it went out; `null` while it waits for its window.
    pub sent_at: Option<DateTime<Utc>>,
    /// Why the e-mail could not be sent, if it could not.
    pub email_error: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn email() -> AlertSettingsDraft {
        AlertSettingsDraft {
            email_enabled: true,
            smtp_host: "smtp.example.com".into(),
            from: "herald@example.com".into(),
            recipients: "ops@example.com; oncall@example.com\n".into(),
            ..Default::default()
        }
    }

    #[test]
    fn email_settings_are_checked_only_when_email_is_on() {
        assert!(AlertSettingsDraft::default().validate().is_ok());
        let ok = email().validate().unwrap();
        assert_eq!(ok.recipients, ["ops@example.com", "oncall@example.com"]);
        let field = |d: AlertSettingsDraft| d.validate().unwrap_err().field;
        assert_eq!(
            field(AlertSettingsDraft {
                smtp_host: " ".into(),
                ..email()
            }),
            "smtp_host"
        );
        assert_eq!(
            field(AlertSettingsDraft {
                from: "herald".into(),
                ..email()
            }),
            "from"
        );
        assert_eq!(
            field(AlertSettingsDraft {
                recipients: "".into(),
                ..email()
            }),
            "recipients"
        );
        assert_eq!(
            field(AlertSettingsDraft {
                recipients: "ops@example.com, not an address".into(),
                ..email()
            }),
            "recipients"
        );
        assert_eq!(
            field(AlertSettingsDraft {
                window_minutes: 0,
                ..email()
            }),
            "window_minutes"
        );
    }

    #[test]
    fn kinds_name_their_operational_event_types() {
        for kind in AlertKind::ALL {
            assert!(crate::domain::catalog::is_operational(kind.event_type()));
            assert!(crate::domain::catalog::is_known(kind.event_type()));
        }
    }
}
