//! Property tests for the parsers that take outside input: the filter parser, event validation,
//! the outbound guard and the `Retry-After` parser. Each must never panic, and each keeps the
//! promise stated beside its property.

use chrono::{Duration, TimeZone, Utc};
use herald::delivery::guard::{is_public, GuardPolicy};
use herald::delivery::retry::parse_retry_after;
use herald::domain::event::NewEvent;
use herald::domain::filter::Filter;
use proptest::prelude::*;
use serde_json::{json, Value};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Arbitrary JSON, a few levels deep.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        ".{0,12}".prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map("[a-z_.]{0,8}", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Conditions that look like the real thing, with any operator and value.
fn condition() -> impl Strategy<Value = Value> {
    (
        prop_oneof![Just("data.tier".to_owned()), "[a-z.]{0,16}"],
        prop_oneof![
            Just("eq"),
            Just("ne"),
            Just("gt"),
            Just("gte"),
            Just("lt"),
            Just("lte"),
            Just("in"),
            Just("contains"),
            Just("exists"),
            Just("bogus")
        ],
        json_value(),
    )
        .prop_map(|(path, op, value)| json!({"path": path, "op": op, "value": value}))
}

proptest! {
    /// The filter parser refuses or accepts anything without panicking, and an accepted filter
    /// evaluates any document without panicking; the empty filter matches everything.
    #[test]
    fn filters_never_panic(raw in prop_oneof![json_value(), prop::collection::vec(condition(), 0..25).prop_map(Value::Array)],
                           doc in json_value()) {
        if let Ok(f) = Filter::parse(&raw) {
            let _ = f.matches(&doc);
            prop_assert!(f.to_json().is_array() || f.to_json().is_null());
        }
        prop_assert!(Filter::default().matches(&doc));
    }

    /// Event validation: `data` must be an object and the type known; an accepted event's
    /// envelope carries exactly the data given.
    #[test]
    fn event_validation_never_panics(event_type in prop_oneof![Just("points.awarded".to_owned()), ".{0,20}"],
                                     data in json_value(), id in proptest::option::of(".{0,40}")) {
        let now = Utc.with_ymd_and_hms(2026, 12, 1, 0, 0, 0).unwrap();
        match NewEvent::parse(&event_type, data.clone(), id.as_deref(), None, now) {
            Ok(e) => {
                prop_assert!(data.is_object());
                prop_assert_eq!(serde_json::to_value(e.envelope()).unwrap()["data"].clone(), data);
            }
            Err(err) => prop_assert!(!err.field.is_empty()),
        }
    }

    /// The guard judges an address that translates to IPv4 (NAT64, 6to4, IPv4-mapped) exactly as
    /// the IPv4 address it leads to.
    #[test]
    fn translated_addresses_are_judged_by_their_ipv4(octets in any::<[u8; 4]>(), suffix in any::<u16>()) {
        let v4 = Ipv4Addr::from(octets);
        let [a, b, c, d] = octets;
        let hi = u16::from_be_bytes([a, b]);
        let lo = u16::from_be_bytes([c, d]);
        let nat64 = Ipv6Addr::new(0x64, 0xff9b, 0, 0, 0, 0, hi, lo);
        let six_to_four = Ipv6Addr::new(0x2002, hi, lo, suffix, 0, 0, 0, 1);
        let expected = is_public(IpAddr::V4(v4));
        prop_assert_eq!(is_public(IpAddr::V6(nat64)), expected);
        prop_assert_eq!(is_public(IpAddr::V6(six_to_four)), expected);
        prop_assert_eq!(is_public(IpAddr::V6(v4.to_ipv6_mapped())), expected);
    }

    /// The send-time check never panics on any URL that parses, and refuses every literal
    /// address the guard calls non-public.
    #[test]
    fn literal_check_never_panics(url in ".{0,60}", ip in any::<IpAddr>()) {
        let strict = GuardPolicy::default();
        if let Ok(url) = url::Url::parse(&url) {
            let _ = strict.check_literal(&url);
        }
        let literal = match ip {
            IpAddr::V4(v4) => format!("http://{v4}/hook"),
            IpAddr::V6(v6) => format!("http://[{v6}]/hook"),
        };
        let literal = url::Url::parse(&literal).expect("an address literal parses");
        prop_assert_eq!(strict.check_literal(&literal).is_ok(), is_public(ip));
    }

    /// `Retry-After`: any header text parses or is ignored, never panics; whole seconds mean that
    /// many seconds; a date is never a negative wait.
    #[test]
    fn retry_after_never_panics(text in ".{0,40}", secs in any::<u32>(), offset in -100_000i64..100_000) {
        let now = Utc.with_ymd_and_hms(2026, 12, 1, 12, 0, 0).unwrap();
        if let Some(d) = parse_retry_after(&text, now) {
            prop_assert!(d >= Duration::zero());
        }
        prop_assert_eq!(parse_retry_after(&secs.to_string(), now), Some(Duration::seconds(secs.into())));
        let date = (now + Duration::seconds(offset)).to_rfc2822();
        prop_assert_eq!(parse_retry_after(&date, now), Some(Duration::seconds(offset.max(0))));
    }

    /// Herald's own RFC 3339 writer (envelopes, SQLite's stored times) gives chrono's text to the
    /// byte, for any instant chrono holds and any fraction of a second: stored times keep sorting
    /// and comparing with those written before it.
    #[test]
    fn rfc3339_text_is_chronos(secs in -400_000_000_000i64..400_000_000_000, nanos in 0u32..1_000_000_000,
                               digits in 0usize..4) {
        // Fractions with 0, 3, 6 and 9 significant digits, as AutoSi chooses among them.
        let nanos = [0, nanos / 1_000_000 * 1_000_000, nanos / 1_000 * 1_000, nanos][digits];
        let t = chrono::DateTime::from_timestamp(secs, nanos).unwrap();
        for use_z in [true, false] {
            let mut ours = String::new();
            herald::domain::rfc3339::push(&mut ours, &t, use_z);
            prop_assert_eq!(ours, t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, use_z));
        }
    }
}
