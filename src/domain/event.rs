//! The envelope receivers get, and the validated input that becomes it.

use super::ids::EventId;
use super::{catalog, ValidationError};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;

/// An event type of the catalog (`points.awarded`, `member.created`, …).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct EventType(String);

impl EventType {
    /// Accepts a type the catalog knows; the error names it and where to look.
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        if !catalog::is_known(raw) {
            return Err(ValidationError::new(
                "event_type",
                format!("Unknown event type '{raw}'; see GET /api/v1/event-types"),
            ));
        }
        Ok(Self(raw.to_owned()))
    }

    /// `webhook.verification`: the ping Verify sends, outside the catalog (no one subscribes).
    pub fn verification() -> Self {
        Self(catalog::VERIFICATION_EVENT.to_owned())
    }

    /// Wraps a value read back from storage (accepted once; the catalog may have moved on).
    pub fn from_trusted(raw: String) -> Self {
        Self(raw)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Version of the envelope's shape, sent as `schema_version`.
pub const SCHEMA_VERSION: &str = "1.0.0";

/// The JSON body of every delivery (the wire contract of DESIGN.md), with the attributes the
/// loyalty platforms' own webhooks carry at the top level: `timestamp` (the event's time again)
/// and the member the event is about, `user_id` and/or `member_id`, when `data` names one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    pub event_id: EventId,
    pub event_type: EventType,
    #[serde(serialize_with = "super::rfc3339::serialize_z")]
    pub event_timestamp: DateTime<Utc>,
    #[serde(serialize_with = "super::rfc3339::serialize_z")]
    pub timestamp: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub member_id: Option<String>,
    pub schema_version: String,
    pub data: serde_json::Value,
}

/// Longest member id the audit log can be searched by (a longer one is still sent, but not
/// indexed: PostgreSQL refuses index entries over about 2,700 bytes).
pub const MEMBER_MAX_CHARS: usize = 200;

impl Envelope {
    /// The member this event is about, as the audit log's search finds it: `member_id`, or
    /// `user_id` when it has none. `None` when neither is there, or when it is longer than
    /// `MEMBER_MAX_CHARS` or holds control characters (NUL cannot be stored as PostgreSQL text;
    /// nobody types the others into a search box).
    pub fn member(&self) -> Option<String> {
        member_of(self.member_id.as_deref(), self.user_id.as_deref())
    }
}

/// The member a stored event's body (its envelope) is about, by `Envelope::member`'s rule;
/// `None` when it names none or is not an envelope. For events stored before their member was
/// kept beside them (see `delivery::backfill`).
pub fn member_in_body(body: &str) -> Option<String> {
    #[derive(Deserialize)]
    struct Named {
        #[serde(default)]
        member_id: Option<String>,
        #[serde(default)]
        user_id: Option<String>,
    }
    let named: Named = serde_json::from_str(body).ok()?;
    member_of(named.member_id.as_deref(), named.user_id.as_deref())
}

fn member_of(member_id: Option<&str>, user_id: Option<&str>) -> Option<String> {
    let id = member_id.or(user_id)?;
    (id.chars().count() <= MEMBER_MAX_CHARS && !id.chars().any(char::is_control))
        .then(|| id.to_owned())
}

/// `data[key]` as text, when it is a non-empty string or a number.
fn id_in(data: &serde_json::Value, key: &str) -> Option<String> {
    match data.get(key)? {
        serde_json::Value::String(s) if !s.is_empty() => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// An event accepted for ingest: the type exists and `data` is an object.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    pub event_id: EventId,
    pub event_type: EventType,
    pub event_timestamp: DateTime<Utc>,
    pub data: serde_json::Value,
}

impl NewEvent {
    /// Validates a posted event. `now` fills a missing timestamp, a fresh UUIDv4 a missing id.
    pub fn parse(
        event_type: &str,
        data: serde_json::Value,
        event_id: Option<&str>,
        event_timestamp: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Result<Self, ValidationError> {
        let event_type = EventType::parse(event_type)?;
        if !data.is_object() {
            return Err(ValidationError::new("data", "data must be a JSON object"));
        }
        let event_id = match event_id {
            None => EventId::generate(),
            Some(raw) => EventId::parse(raw)
                .ok_or_else(|| ValidationError::new("event_id", "event_id must be a UUID"))?,
        };
        Ok(Self {
            event_id,
            event_type,
            event_timestamp: event_timestamp.unwrap_or(now),
            data,
        })
    }

    pub fn envelope(&self) -> Envelope {
        self.clone().into_envelope()
    }

    /// The envelope, taking the event's `data` rather than copying it (ingest's path).
    pub fn into_envelope(self) -> Envelope {
        Envelope {
            user_id: id_in(&self.data, "user_id"),
            member_id: id_in(&self.data, "member_id"),
            event_id: self.event_id,
            event_type: self.event_type,
            event_timestamp: self.event_timestamp,
            timestamp: self.event_timestamp,
            schema_version: SCHEMA_VERSION.to_owned(),
            data: self.data,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn unknown_types_and_non_objects_are_refused_by_field() {
        let now = Utc::now();
        let e = NewEvent::parse("nope", json!({}), None, None, now).unwrap_err();
        assert_eq!(e.field, "event_type");
        let e = NewEvent::parse("points.awarded", json!([1]), None, None, now).unwrap_err();
        assert_eq!(e.field, "data");
        let e = NewEvent::parse("points.awarded", json!({}), Some("x"), None, now).unwrap_err();
        assert_eq!(e.field, "event_id");
        let ok = NewEvent::parse("points.awarded", json!({"p": 1}), None, None, now).unwrap();
        assert_eq!(ok.event_timestamp, now);
        assert_eq!(ok.envelope().schema_version, "1.0.0");
    }

    #[test]
    fn the_envelope_lifts_the_member_and_the_time_to_the_top() {
        let now = Utc::now();
        let member = NewEvent::parse(
            "member.created",
            json!({"member_id": "m_1"}),
            None,
            None,
            now,
        )
        .unwrap()
        .envelope();
        let body = serde_json::to_value(&member).unwrap();
        assert_eq!(body["member_id"], "m_1");
        assert!(body.get("user_id").is_none(), "absent, not null: {body}");
        assert_eq!(body["timestamp"], body["event_timestamp"]);
        let numeric = NewEvent::parse("points.awarded", json!({"user_id": 42}), None, None, now)
            .unwrap()
            .envelope();
        assert_eq!(numeric.user_id.as_deref(), Some("42"));
        let neither = NewEvent::parse("points.awarded", json!({"user_id": ""}), None, None, now)
            .unwrap()
            .envelope();
        assert_eq!((neither.user_id, neither.member_id), (None, None));
    }

    #[test]
    fn the_member_searched_by_is_member_id_then_user_id_when_storable() {
        let now = Utc::now();
        // Read from the envelope at ingest, and from its stored body by the backfill: the same.
        let member = |data: serde_json::Value| {
            let envelope = NewEvent::parse("points.awarded", data, None, None, now)
                .unwrap()
                .envelope();
            let body = serde_json::to_string(&envelope).unwrap();
            assert_eq!(member_in_body(&body), envelope.member(), "{body}");
            envelope.member()
        };
        assert_eq!(member(json!({"user_id": "u_1"})).as_deref(), Some("u_1"));
        assert_eq!(
            member(json!({"user_id": "u_1", "member_id": "m_1"})).as_deref(),
            Some("m_1")
        );
        assert_eq!(member(json!({"member_id": 7})).as_deref(), Some("7"));
        assert_eq!(member(json!({"points": 5})), None);
        let longest = "m".repeat(MEMBER_MAX_CHARS);
        assert_eq!(member(json!({"member_id": longest.clone()})), Some(longest));
        assert_eq!(
            member(json!({"member_id": "m".repeat(MEMBER_MAX_CHARS + 1)})),
            None
        );
        assert_eq!(member(json!({"member_id": "m\u{0}"})), None);
        assert_eq!(member(json!({"member_id": "m\n1"})), None);
        assert_eq!(member_in_body("not json"), None);
        assert_eq!(member_in_body(r#"{"member_id": 7}"#), None);
    }
}
