//! Alert e-mail over SMTP (`lettre`): one plain-text message to every recipient of a program's
//! alert settings. The SMTP host is an admin's own setting, so it is not held to the webhook SSRF
//! guard (a relay on the private network is the usual case).

use crate::domain::alerts::{AlertSettings, SmtpTls};
use lettre::message::header::ContentType;
use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use std::time::Duration;

/// How long one SMTP conversation may take before the send counts as failed.
const SMTP_TIMEOUT: Duration = Duration::from_secs(20);

/// One alert message.
#[derive(Debug, Clone, PartialEq)]
pub struct Mail {
    pub subject: String,
    pub body: String,
}

/// Sends `mail` with `settings`; the error is a sentence for the console (never the password).
pub async fn send(
    settings: &AlertSettings,
    password: Option<&str>,
    mail: &Mail,
) -> Result<(), String> {
    let from: Mailbox = settings
        .from
        .parse()
        .map_err(|e| format!("From address {}: {e}", settings.from))?;
    let mut message = Message::builder()
        .from(from)
        .subject(&mail.subject)
        .header(ContentType::TEXT_PLAIN);
    for to in &settings.recipients {
        let to: Mailbox = to.parse().map_err(|e| format!("recipient {to}: {e}"))?;
        message = message.to(to);
    }
    let message = message
        .body(mail.body.clone())
        .map_err(|e| format!("could not build the message: {e}"))?;
    let host = settings.smtp_host.as_str();
    let builder = match settings.smtp_tls {
        SmtpTls::StartTls => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(host),
        SmtpTls::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(host),
        SmtpTls::None => Ok(AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(
            host,
        )),
    }
    .map_err(|e| format!("SMTP host {host}: {e}"))?;
    let mut builder = builder.port(settings.smtp_port).timeout(Some(SMTP_TIMEOUT));
    if !settings.smtp_username.is_empty() {
        builder = builder.credentials(Credentials::new(
            settings.smtp_username.clone(),
            password.unwrap_or_default().to_owned(),
        ));
    }
    builder
        .build()
        .send(message)
        .await
        .map(|_| ())
        .map_err(|e| format!("SMTP {host}:{}: {e}", settings.smtp_port))
}
