//! The event catalog: every event type a loyalty platform can post, grouped by feed, each with a
//! description, a JSON schema of its `data` and an example payload. The API serves it, the wizard
//! lists it, Send Test posts its examples, and ingest refuses types that are not in it.

use serde::Serialize;
use serde_json::{json, Value};

/// A feed groups related events; the wizard's Feed Type select lists these.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Feed {
    pub key: &'static str,
    pub label: &'static str,
}

pub const FEEDS: [Feed; 11] = [
    Feed {
        key: "user",
        label: "User",
    },
    Feed {
        key: "member",
        label: "Member",
    },
    Feed {
        key: "points",
        label: "Points",
    },
    Feed {
        key: "point_balance",
        label: "Point Balance",
    },
    Feed {
        key: "badge",
        label: "Badge",
    },
    Feed {
        key: "reward",
        label: "Reward",
    },
    Feed {
        key: "order",
        label: "Order",
    },
    Feed {
        key: "journey",
        label: "Journey",
    },
    Feed {
        key: "leaderboard",
        label: "Leaderboard",
    },
    Feed {
        key: "delivery",
        label: "Herald: deliveries",
    },
    Feed {
        key: "endpoint",
        label: "Herald: endpoints",
    },
];

/// Feeds of operational events: Herald raises them itself (alerts) and the events API refuses
/// them, so a subscriber can trust they came from Herald.
pub const OPERATIONAL_FEEDS: [&str; 2] = ["delivery", "endpoint"];

/// Whether `name` is an operational event type (see `OPERATIONAL_FEEDS`).
pub fn is_operational(name: &str) -> bool {
    name.split_once('.')
        .is_some_and(|(feed, _)| OPERATIONAL_FEEDS.contains(&feed))
}

/// One catalog entry. `name` is `feed.event`.
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EventType {
    pub name: &'static str,
    pub feed: &'static str,
    pub description: &'static str,
    /// JSON schema of `data`.
    #[cfg_attr(feature = "server", schema(value_type = Object))]
    pub schema: Value,
    /// An example `data`, as Send Test posts it.
    #[cfg_attr(feature = "server", schema(value_type = Object))]
    pub example: Value,
}

/// The type Herald uses for its own verification pings; not subscribable.
pub const VERIFICATION_EVENT: &str = "webhook.verification";

/// Names of every event in the catalog, in catalog order.
/// `user.*` are the Annex Cloud feed's names; `member.created` and `member.updated` are the names
/// Incentable publishes for the same moments, accepted as they are.
pub const EVENT_NAMES: [&str; 26] = [
    "user.created",
    "user.updated",
    "member.created",
    "member.updated",
    "member.tier_changed",
    "points.awarded",
    "points.deducted",
    "points.expired",
    "point_balance.user",
    "point_balance.group",
    "badge.awarded",
    "reward.awarded",
    "reward.redeemed",
    "reward.expired",
    "reward.low_coupon_alert",
    "order.shipped",
    "order.delivered",
    "journey.in_progress",
    "journey.completed",
    "journey.abandoned",
    "leaderboard.position_changed",
    "leaderboard.period_ended",
    "delivery.exhausted",
    "endpoint.disabled",
    "endpoint.recovered",
    "endpoint.flagged",
];

pub fn is_known(name: &str) -> bool {
    EVENT_NAMES.contains(&name)
}

/// The whole catalog, in a stable order.
pub fn catalog() -> Vec<EventType> {
    EVENT_NAMES
        .iter()
        .map(|n| event_type(n).expect("listed"))
        .collect()
}

/// The `data` of every operational event (see `domain::alerts`).
const ALERT_PROPS: &[(&str, &str)] = &[
    ("webhook_id", "string"),
    ("webhook_name", "string"),
    ("count", "integer"),
    ("first_at", "string"),
    ("last_at", "string"),
    ("detail", "string"),
];

/// Builds a JSON schema for an object whose listed properties are all required.
fn object_schema(props: &[(&str, &str)]) -> Value {
    let properties: serde_json::Map<String, Value> = props
        .iter()
        .map(|(name, ty)| ((*name).to_owned(), json!({ "type": ty })))
        .collect();
    let required: Vec<&str> = props.iter().map(|(n, _)| *n).collect();
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "properties": properties,
        "required": required,
    })
}

/// Looks one event type up by name.
pub fn event_type(name: &str) -> Option<EventType> {
    let name: &'static str = EVENT_NAMES.iter().copied().find(|n| *n == name)?;
    let (description, props, example): (&str, &[(&str, &str)], Value) = match name {
        "user.created" => (
            "A member enrolled in the program.",
            &[
                ("user_id", "string"),
                ("email", "string"),
                ("tier", "string"),
                ("created_at", "string"),
            ],
            json!({"user_id": "u_1001", "email": "ada@example.com", "tier": "Bronze", "created_at": "2026-11-22T10:00:00Z"}),
        ),
        "user.updated" => (
            "A member's profile changed.",
            &[("user_id", "string"), ("changes", "object")],
            json!({"user_id": "u_1001", "changes": {"email": "ada.l@example.com"}}),
        ),
        "member.created" => (
            "A member joined the program (Incentable's name for an enrolment).",
            &[
                ("member_id", "string"),
                ("email", "string"),
                ("first_name", "string"),
                ("last_name", "string"),
                ("created_at", "string"),
            ],
            json!({"member_id": "m_2001", "email": "grace@example.com", "first_name": "Grace", "last_name": "Hopper", "created_at": "2026-11-22T10:00:00Z"}),
        ),
        "member.updated" => (
            "A member's details changed (Incentable's name for a profile update).",
            &[("member_id", "string"), ("changes", "object")],
            json!({"member_id": "m_2001", "changes": {"last_name": "Murray Hopper"}}),
        ),
        "member.tier_changed" => (
            "A member moved to another tier.",
            &[
                ("user_id", "string"),
                ("previous_tier", "string"),
                ("tier", "string"),
            ],
            json!({"user_id": "u_1001", "previous_tier": "Silver", "tier": "Gold"}),
        ),
        "points.awarded" => (
            "Points were credited to a member.",
            &[
                ("user_id", "string"),
                ("points", "integer"),
                ("reason", "string"),
                ("balance", "integer"),
            ],
            json!({"user_id": "u_1001", "points": 250, "reason": "purchase", "balance": 1750}),
        ),
        "points.deducted" => (
            "Points were debited from a member.",
            &[
                ("user_id", "string"),
                ("points", "integer"),
                ("reason", "string"),
                ("balance", "integer"),
            ],
            json!({"user_id": "u_1001", "points": 100, "reason": "adjustment", "balance": 1650}),
        ),
        "points.expired" => (
            "A member's points reached their expiry date.",
            &[
                ("user_id", "string"),
                ("points", "integer"),
                ("balance", "integer"),
            ],
            json!({"user_id": "u_1001", "points": 50, "balance": 1600}),
        ),
        "point_balance.user" => (
            "A member's point balance snapshot.",
            &[
                ("user_id", "string"),
                ("balance", "integer"),
                ("as_of", "string"),
            ],
            json!({"user_id": "u_1001", "balance": 1600, "as_of": "2026-11-22T00:00:00Z"}),
        ),
        "point_balance.group" => (
            "A group's pooled point balance snapshot.",
            &[
                ("group_id", "string"),
                ("balance", "integer"),
                ("as_of", "string"),
            ],
            json!({"group_id": "g_42", "balance": 98000, "as_of": "2026-11-22T00:00:00Z"}),
        ),
        "badge.awarded" => (
            "A member earned a badge.",
            &[
                ("user_id", "string"),
                ("badge_id", "string"),
                ("badge_name", "string"),
            ],
            json!({"user_id": "u_1001", "badge_id": "b_7", "badge_name": "Early Bird"}),
        ),
        "reward.awarded" => (
            "A reward was granted to a member.",
            &[
                ("user_id", "string"),
                ("reward_id", "string"),
                ("reward_name", "string"),
            ],
            json!({"user_id": "u_1001", "reward_id": "r_12", "reward_name": "Free Coffee"}),
        ),
        "reward.redeemed" => (
            "A member redeemed a reward.",
            &[
                ("user_id", "string"),
                ("reward_id", "string"),
                ("coupon_code", "string"),
            ],
            json!({"user_id": "u_1001", "reward_id": "r_12", "coupon_code": "COFFEE-8F2K"}),
        ),
        "reward.expired" => (
            "An unredeemed reward expired.",
            &[("user_id", "string"), ("reward_id", "string")],
            json!({"user_id": "u_1001", "reward_id": "r_12"}),
        ),
        "reward.low_coupon_alert" => (
            "A reward's coupon pool is running low.",
            &[
                ("reward_id", "string"),
                ("remaining", "integer"),
                ("threshold", "integer"),
            ],
            json!({"reward_id": "r_12", "remaining": 18, "threshold": 20}),
        ),
        "order.shipped" => (
            "A physical reward order was shipped.",
            &[
                ("order_id", "string"),
                ("user_id", "string"),
                ("carrier", "string"),
                ("tracking_number", "string"),
            ],
            json!({"order_id": "o_555", "user_id": "u_1001", "carrier": "DHL", "tracking_number": "JD0146000034"}),
        ),
        "order.delivered" => (
            "A physical reward order arrived.",
            &[
                ("order_id", "string"),
                ("user_id", "string"),
                ("delivered_at", "string"),
            ],
            json!({"order_id": "o_555", "user_id": "u_1001", "delivered_at": "2026-11-24T15:30:00Z"}),
        ),
        "journey.in_progress" => (
            "A member started or advanced in a journey.",
            &[
                ("user_id", "string"),
                ("journey_id", "string"),
                ("step", "integer"),
                ("total_steps", "integer"),
            ],
            json!({"user_id": "u_1001", "journey_id": "j_onboarding", "step": 2, "total_steps": 5}),
        ),
        "journey.completed" => (
            "A member completed a journey.",
            &[
                ("user_id", "string"),
                ("journey_id", "string"),
                ("completed_at", "string"),
            ],
            json!({"user_id": "u_1001", "journey_id": "j_onboarding", "completed_at": "2026-11-22T10:00:00Z"}),
        ),
        "journey.abandoned" => (
            "A member left a journey unfinished.",
            &[
                ("user_id", "string"),
                ("journey_id", "string"),
                ("last_step", "integer"),
            ],
            json!({"user_id": "u_1001", "journey_id": "j_onboarding", "last_step": 3}),
        ),
        "leaderboard.position_changed" => (
            "A member's leaderboard rank changed.",
            &[
                ("user_id", "string"),
                ("leaderboard_id", "string"),
                ("previous_position", "integer"),
                ("position", "integer"),
            ],
            json!({"user_id": "u_1001", "leaderboard_id": "lb_monthly", "previous_position": 12, "position": 4}),
        ),
        "leaderboard.period_ended" => (
            "A leaderboard period closed with its final standings.",
            &[
                ("leaderboard_id", "string"),
                ("period_end", "string"),
                ("top", "array"),
            ],
            json!({"leaderboard_id": "lb_monthly", "period_end": "2026-11-30T23:59:59Z", "top": [{"user_id": "u_1001", "position": 1}]}),
        ),
        "delivery.exhausted" => (
            "Herald: deliveries to a webhook were dead-lettered (grouped: one event per webhook per alert window, `count` says how many).",
            ALERT_PROPS,
            json!({"webhook_id": "wh_01jd8x3v7c", "webhook_name": "Rewards CRM", "count": 12, "first_at": "2026-11-30T08:00:00Z", "last_at": "2026-11-30T08:41:00Z", "detail": "HTTP 503 Service Unavailable"}),
        ),
        "endpoint.disabled" => (
            "Herald switched a webhook off (its endpoint answered 410 Gone, or failed every try for the configured window); its deliveries are held.",
            ALERT_PROPS,
            json!({"webhook_id": "wh_01jd8x3v7c", "webhook_name": "Rewards CRM", "count": 1, "first_at": "2026-11-30T09:00:00Z", "last_at": "2026-11-30T09:00:00Z", "detail": "failing since 2026-11-29 09:00 UTC: all 37 tries failed"}),
        ),
        "endpoint.recovered" => (
            "Herald: a webhook that had dead-lettered deliveries or been switched off delivered successfully again.",
            ALERT_PROPS,
            json!({"webhook_id": "wh_01jd8x3v7c", "webhook_name": "Rewards CRM", "count": 1, "first_at": "2026-11-30T10:00:00Z", "last_at": "2026-11-30T10:00:00Z", "detail": "HTTP 200 after the last alert"}),
        ),
        "endpoint.flagged" => (
            "Herald: an insight rule flagged a webhook (failure rate or latency above its baseline, unusual payload size, or silence); at most one a day per webhook while it lasts.",
            ALERT_PROPS,
            json!({"webhook_id": "wh_01jd8x3v7c", "webhook_name": "Rewards CRM", "count": 1, "first_at": "2026-11-30T11:00:00Z", "last_at": "2026-11-30T11:00:00Z", "detail": "Failure rate 38% over the last 6 hours, against 2% in the 7 days before."}),
        ),
        _ => return None,
    };
    let (feed, _) = name.split_once('.')?;
    Some(EventType {
        name,
        feed,
        description,
        schema: object_schema(props),
        example,
    })
}

/// The events of one feed, for the wizard's checkbox list.
pub fn events_of_feed(feed: &str) -> impl Iterator<Item = &'static str> + '_ {
    EVENT_NAMES
        .iter()
        .copied()
        .filter(move |n| n.split_once('.').is_some_and(|(f, _)| f == feed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_listed_event_has_a_feed_schema_and_matching_example() {
        let all = catalog();
        assert_eq!(all.len(), 26);
        for et in &all {
            assert!(FEEDS.iter().any(|f| f.key == et.feed), "{}", et.name);
            let required = et.schema["required"].as_array().unwrap();
            for field in required {
                let field = field.as_str().unwrap();
                assert!(
                    et.example.get(field).is_some(),
                    "{} example lacks {field}",
                    et.name
                );
            }
        }
        assert!(event_type("nope.nothing").is_none());
        assert!(!is_known(VERIFICATION_EVENT));
    }

    #[test]
    fn every_feed_has_events() {
        for feed in FEEDS {
            assert!(events_of_feed(feed.key).count() > 0, "{}", feed.key);
        }
    }
}
