//! Typed, prefixed identifiers (`wh_…`, `dlv_…`, `att_…`, `key_…`, `prg_…`).
//!
//! Herald's own records get a prefix and a time-ordered UUIDv7 body, so ids sort by creation time
//! (useful as a keyset tie-breaker) and a stray id pasted into the wrong place is obvious. Event ids
//! are caller-visible UUIDs instead, because callers may bring their own.

use serde::{Deserialize, Serialize};
use std::fmt;

macro_rules! prefixed_id {
    ($(#[$doc:meta])* $name:ident, $prefix:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            pub const PREFIX: &'static str = $prefix;

            /// A fresh, time-ordered id.
            pub fn generate() -> Self {
                Self(format!("{}{}", $prefix, uuid::Uuid::now_v7().simple()))
            }

            /// Accepts an id that carries this type's prefix and a 32-digit hex body.
            pub fn parse(raw: &str) -> Option<Self> {
                let body = raw.strip_prefix($prefix)?;
                (body.len() == 32 && body.bytes().all(|b| b.is_ascii_hexdigit()))
                    .then(|| Self(raw.to_owned()))
            }

            /// Wraps a value read back from storage, which only ever holds ids we generated.
            pub fn from_trusted(raw: String) -> Self {
                Self(raw)
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}

prefixed_id!(
    /// A loyalty program: the tenant every webhook, event and key belongs to.
    ProgramId, "prg_"
);
prefixed_id!(
    /// A webhook endpoint configuration.
    WebhookId, "wh_"
);
prefixed_id!(
    /// One event's delivery to one webhook (the unit that is retried and dead-lettered).
    DeliveryId, "dlv_"
);
prefixed_id!(
    /// One try of a delivery, a test or a verification: a row of the audit log.
    AttemptId, "att_"
);
prefixed_id!(
    /// An API key used to post events.
    ApiKeyId, "key_"
);
prefixed_id!(
    /// A console user.
    UserId, "usr_"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_parse_back_and_sort_by_time() {
        let a = WebhookId::generate();
        let b = WebhookId::generate();
        assert_eq!(WebhookId::parse(a.as_str()), Some(a.clone()));
        assert!(a < b, "{a} should sort before {b}");
    }

    #[test]
    fn parse_rejects_wrong_prefix_and_garbage() {
        let wh = WebhookId::generate();
        assert_eq!(DeliveryId::parse(wh.as_str()), None);
        assert_eq!(WebhookId::parse("wh_nothex"), None);
        assert_eq!(WebhookId::parse(""), None);
    }
}
prefixed_id!(
    /// One line of the admin activity log.
    ActivityId, "act_"
);
prefixed_id!(
    /// One grouped alert (see `domain::alerts`).
    AlertId, "alr_"
);
prefixed_id!(
    /// A bulk replay of dead letters, run in the background.
    ReplayJobId, "rpl_"
);

/// An event's id: a UUID, the caller's own (for idempotency) or one Herald made. Receivers see it
/// as `webhook-id` and dedupe on it; it never changes across retries and replays.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct EventId(String);

impl EventId {
    /// A fresh random (v4) id.
    pub fn generate() -> Self {
        Self(uuid::Uuid::new_v4().to_string())
    }

    /// Accepts any UUID spelling and keeps its canonical (lowercase, hyphenated) form.
    pub fn parse(raw: &str) -> Option<Self> {
        uuid::Uuid::parse_str(raw).ok().map(|u| Self(u.to_string()))
    }

    /// Wraps a value read back from storage, which only ever holds ids that were parsed.
    pub fn from_trusted(raw: String) -> Self {
        Self(raw)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for EventId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}
