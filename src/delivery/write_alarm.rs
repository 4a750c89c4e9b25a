//! The write alarm: e-mail when Herald's writes to its database keep failing, and when they stop.
//!
//! Other alerts go through the database (counted, grouped, sent as operational events), which
//! is exactly what cannot work while writes fail, so this one lives in memory. Once writes have
//! failed for `AFTER` with no success between (a lock held for a moment is no news), it e-mails
//! the alert recipients of every program with e-mail on, once per run of failures (programs that
//! share the same mail settings and recipients get one message); when a write succeeds again, it
//! e-mails again (a failure that merely ages out with no write since proves nothing, so the
//! alarm stays raised until a write works). The settings are read when the alarm goes off (a full disk leaves the
//! database readable) or, if that read fails too (the database unreachable), taken from the last
//! read that worked (the alert task reads them every quarter of an hour). With several Herald
//! processes on one PostgreSQL, each that sees the failures sends its own message, naming its
//! host and process.

use super::alerts::Stored;
use super::health::WriteTrouble;
use super::mail::Mail;
use super::{Engine, Result};
use chrono::{DateTime, Utc};
use std::collections::HashSet;
use std::sync::Mutex;

/// How long writes must have been failing before the alarm goes off.
pub const AFTER: chrono::Duration = chrono::Duration::seconds(30);

#[derive(Default)]
pub(super) struct WriteAlarm {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// The run of failures announced (kept up to date with its latest failure) with the count
    /// of recoveries then, until its end is announced.
    announced: Option<(WriteTrouble, u64)>,
    /// The distinct mail settings of programs with e-mail on, as last read.
    recipients: Vec<Stored>,
}

/// Which message a look at the writes sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteAlarmKind {
    /// Writes have been failing for `AFTER`.
    Failing,
    /// A write has succeeded since.
    Recovered,
}

/// What a look at the writes sent: the message, and to how many sets of recipients it went
/// (`failed`: SMTP refused or could not be reached; logged).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriteAlarmSent {
    pub kind: WriteAlarmKind,
    pub sent: usize,
    pub failed: usize,
}

impl Engine {
    /// One look at the writes for the alarm (the alert task takes one every few seconds):
    /// sends the failing message once writes have failed for `AFTER`, and the recovered message
    /// once a write has succeeded after that. `None` when nothing was due.
    pub async fn watch_writes(&self) -> Option<WriteAlarmSent> {
        let now = self.now();
        let trouble = self.write_trouble();
        let recoveries = self.inner.write_health.recoveries();
        let (kind, message) = {
            let mut state = self.inner.write_alarm.state.lock().expect("write alarm");
            match (&trouble, &mut state.announced) {
                (Some(t), Some((announced, _))) => {
                    *announced = t.clone();
                    return None;
                }
                (None, None) => return None,
                (Some(t), None) if now - t.since < AFTER => return None,
                (Some(t), None) => (WriteAlarmKind::Failing, failing(t)),
                (None, Some((_, then))) if *then == recoveries => return None,
                (None, Some((announced, _))) => (WriteAlarmKind::Recovered, recovered(announced)),
            }
        };
        let (sent, failed) = self.e_mail_alarm(&message).await;
        self.inner
            .write_alarm
            .state
            .lock()
            .expect("write alarm")
            .announced = trouble.map(|t| (t, recoveries));
        match kind {
            WriteAlarmKind::Failing => {
                tracing::error!("writes to the database keep failing; alarm e-mailed")
            }
            WriteAlarmKind::Recovered => tracing::info!("writes to the database work again"),
        }
        Some(WriteAlarmSent { kind, sent, failed })
    }

    /// Reads the programs' mail settings for the alarm now, keeping them for when the database
    /// cannot be read.
    pub async fn refresh_alarm_recipients(&self) -> Result<()> {
        let read = self.read_alarm_recipients().await?;
        self.inner
            .write_alarm
            .state
            .lock()
            .expect("write alarm")
            .recipients = read;
        Ok(())
    }

    pub(super) async fn alarm_recipients(&self) -> Vec<Stored> {
        if let Err(e) = self.refresh_alarm_recipients().await {
            tracing::warn!(error = %e, "cannot read the alert settings; using the last ones read");
        }
        let state = self.inner.write_alarm.state.lock().expect("write alarm");
        state.recipients.clone()
    }

    /// The mail settings of every active program with e-mail on, one per distinct server,
    /// sender and recipients.
    async fn read_alarm_recipients(&self) -> Result<Vec<Stored>> {
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        for program in self.store().list_programs().await? {
            if program.archived_at.is_some() {
                continue;
            }
            let stored = self.stored_alert_settings(&program.id).await?;
            let s = &stored.settings;
            if !s.email_enabled {
                continue;
            }
            let mut to = s.recipients.clone();
            to.sort();
            if seen.insert((s.smtp_host.clone(), s.smtp_port, s.from.clone(), to)) {
                out.push(stored);
            }
        }
        Ok(out)
    }
}

fn when(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

/// Which Herald process sends the message (several may share one PostgreSQL).
pub(super) fn reporter() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "an unnamed host".to_owned());
    format!(
        "Reported by Herald on {host} (process {}).",
        std::process::id()
    )
}

fn failing(t: &WriteTrouble) -> Mail {
    Mail {
        subject: format!("[Herald] Cannot store new events: {}", t.reason),
        body: format!(
            "Herald's writes to its database have been failing since {}: {}.\n\n\
             Until they work again, new events are answered 503 with a Retry-After header \
             (senders that retry lose nothing, and nothing accepted before is lost), /healthz \
             answers 503 with the reason, and the console shows it to everyone signed in. \
             Herald keeps trying and recovers by itself once the database takes writes again; \
             another message will say so.\n\n{}\n",
            when(t.since),
            t.reason,
            reporter()
        ),
    }
}

fn recovered(t: &WriteTrouble) -> Mail {
    Mail {
        subject: "[Herald] Storing new events again".to_owned(),
        body: format!(
            "Herald's writes to its database work again: one has succeeded, and none has failed \
             since {}. They had been failing since {} ({}).\n\n\
             Events refused meanwhile were answered 503; those their senders sent again have \
             been stored since.\n\n{}\n",
            when(t.last),
            when(t.since),
            t.reason,
            reporter()
        ),
    }
}
