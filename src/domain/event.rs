//! The envelope receivers get, and the validated input that becomes it.

use super::{catalog, ValidationError};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Version of the envelope's shape, sent as `schema_version`.
pub const SCHEMA_VERSION: &str = "1.0.0";

/// The JSON body of every delivery (the wire contract of DESIGN.md).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    pub event_id: Uuid,
    pub event_type: String,
    pub event_timestamp: DateTime<Utc>,
    pub schema_version: String,
    pub data: serde_json::Value,
}

/// An event accepted for ingest: the type exists and `data` is an object.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    pub event_id: Uuid,
    pub event_type: String,
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
        if !catalog::is_known(event_type) {
            return Err(ValidationError::new(
                "event_type",
                format!("Unknown event type '{event_type}'; see GET /api/v1/event-types"),
            ));
        }
        if !data.is_object() {
            return Err(ValidationError::new("data", "data must be a JSON object"));
        }
        let event_id = match event_id {
            None => Uuid::new_v4(),
            Some(raw) => Uuid::parse_str(raw)
                .map_err(|_| ValidationError::new("event_id", "event_id must be a UUID"))?,
        };
        Ok(Self {
            event_id,
            event_type: event_type.to_owned(),
            event_timestamp: event_timestamp.unwrap_or(now),
            data,
        })
    }

    pub fn envelope(&self) -> Envelope {
        Envelope {
            event_id: self.event_id,
            event_type: self.event_type.clone(),
            event_timestamp: self.event_timestamp,
            schema_version: SCHEMA_VERSION.to_owned(),
            data: self.data.clone(),
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
}
