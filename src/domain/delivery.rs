//! The vocabulary of deliveries and attempts, shared by the audit log screens and the engine.

use serde::{Deserialize, Serialize};

macro_rules! str_enum {
    ($(#[$doc:meta])* $name:ident { $($variant:ident => $s:literal / $label:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $s),+ }
            }

            /// The word the console shows.
            pub fn label(self) -> &'static str {
                match self { $($name::$variant => $label),+ }
            }

            pub fn parse(raw: &str) -> Option<Self> {
                match raw { $($s => Some($name::$variant),)+ _ => None }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}
pub(crate) use str_enum;

str_enum!(
    /// What caused an attempt.
    Trigger {
        Event => "event" / "Event",
        Retry => "retry" / "Retry",
        Test => "test" / "Test",
        Replay => "replay" / "Replay",
        Verify => "verify" / "Verify",
    }
);

impl Trigger {
    /// Live attempts move a webhook's success rate, last success/failure and status.
    pub fn is_live(self) -> bool {
        matches!(self, Self::Event | Self::Retry | Self::Replay)
    }
}

str_enum!(
    /// How one attempt ended.
    AttemptStatus {
        Success => "success" / "Success",
        Failure => "failure" / "Failure",
        Sandboxed => "sandboxed" / "Sandboxed",
    }
);

str_enum!(
    /// Where a delivery stands; `Failed` is the dead letter.
    DeliveryStatus {
        Pending => "pending" / "Pending",
        InFlight => "in_flight" / "In flight",
        Succeeded => "succeeded" / "Succeeded",
        Failed => "failed" / "Failed",
    }
);

/// When the pending deliveries of a switched-off webhook are due: not before it is switched on
/// again (which makes each due at its acceptance time). Keeping them at the far end of the
/// due-order index means claims never walk past a large hold to find the work that is due; lists
/// tell a held delivery by it (`DeliveryView::is_held`).
pub fn held_due() -> chrono::DateTime<chrono::Utc> {
    use chrono::TimeZone;
    chrono::Utc
        .with_ymd_and_hms(9999, 1, 1, 0, 0, 0)
        .single()
        .expect("a valid date")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for t in Trigger::ALL {
            assert_eq!(Trigger::parse(t.as_str()), Some(*t));
        }
        assert_eq!(
            DeliveryStatus::parse("in_flight"),
            Some(DeliveryStatus::InFlight)
        );
        assert_eq!(AttemptStatus::parse("nope"), None);
        assert!(Trigger::Retry.is_live() && !Trigger::Test.is_live());
    }
}
