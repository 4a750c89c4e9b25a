//! RFC 3339 text of a UTC time, byte for byte as chrono writes it with `SecondsFormat::AutoSi`
//! (what its serde support and sqlx's SQLite encoding use), without going through `core::fmt`.
//!
//! Every delivery writes about a dozen times: two in its envelope, the rest bound as SQLite text.
//! Through chrono's formatter (`core::fmt`, its date arithmetic once per field) each took about
//! 700 instructions as SQLite text and 2,400 through serde's `collect_str`; written here in one
//! pass, about 450 (callgrind, README thirtieth sitting).
//! Dates outside years 0–9999 and leap seconds are left to chrono.

use chrono::{DateTime, SecondsFormat, Utc};

/// Appends `t` to `out`: `2026-12-06T02:49:01.207387Z` (`use_z`) or `…+00:00`, with 0, 3, 6 or 9
/// digits of fraction, the fewest that hold it exactly.
pub fn push(out: &mut String, t: &DateTime<Utc>, use_z: bool) {
    let nano = t.timestamp_subsec_nanos();
    let secs = t.timestamp();
    let (days, of_day) = (secs.div_euclid(86_400), secs.rem_euclid(86_400) as u32);
    let (year, month, day) = civil(days);
    if !(0..=9999).contains(&year) || nano >= 1_000_000_000 {
        out.push_str(&t.to_rfc3339_opts(SecondsFormat::AutoSi, use_z));
        return;
    }
    // 4 + 6 for the date, 9 for the time, 10 for the fraction, 6 for the offset: 35 at most.
    let mut buf = [0u8; 35];
    let two = |buf: &mut [u8; 35], at: usize, v: u32| {
        buf[at] = b'0' + (v / 10) as u8;
        buf[at + 1] = b'0' + (v % 10) as u8;
    };
    let year = year as u32;
    two(&mut buf, 0, year / 100);
    two(&mut buf, 2, year % 100);
    buf[4] = b'-';
    two(&mut buf, 5, month);
    buf[7] = b'-';
    two(&mut buf, 8, day);
    buf[10] = b'T';
    two(&mut buf, 11, of_day / 3600);
    buf[13] = b':';
    two(&mut buf, 14, of_day / 60 % 60);
    buf[16] = b':';
    two(&mut buf, 17, of_day % 60);
    let mut n = 19;
    let (digits, mut frac) = if nano == 0 {
        (0, 0)
    } else if nano.is_multiple_of(1_000_000) {
        (3, nano / 1_000_000)
    } else if nano.is_multiple_of(1_000) {
        (6, nano / 1_000)
    } else {
        (9, nano)
    };
    if digits > 0 {
        buf[n] = b'.';
        for i in (0..digits).rev() {
            buf[n + 1 + i] = b'0' + (frac % 10) as u8;
            frac /= 10;
        }
        n += 1 + digits;
    }
    let zone: &[u8] = if use_z { b"Z" } else { b"+00:00" };
    buf[n..n + zone.len()].copy_from_slice(zone);
    n += zone.len();
    // Only ASCII digits and separators were written.
    out.push_str(std::str::from_utf8(&buf[..n]).expect("ASCII"));
}

/// The proleptic Gregorian (year, month, day) of `days` since 1970-01-01 (Howard Hinnant's
/// `civil_from_days`: 400-year eras of 146,097 days, years counted from March).
fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097); // day of the era, 0..=146_096
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365; // 0..=399
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // day of the year from March 1st
    let mp = (5 * doy + 2) / 153; // month from March, 0..=11
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// `t` as RFC 3339 text ending in `Z`.
pub fn to_z(t: &DateTime<Utc>) -> String {
    let mut s = String::with_capacity(32);
    push(&mut s, t, true);
    s
}

/// For `#[serde(serialize_with = "…")]`: the same text chrono's own `Serialize` writes.
pub fn serialize_z<S: serde::Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&to_z(t))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn both(t: DateTime<Utc>) {
        for use_z in [true, false] {
            let mut ours = String::new();
            push(&mut ours, &t, use_z);
            assert_eq!(
                ours,
                t.to_rfc3339_opts(SecondsFormat::AutoSi, use_z),
                "{t:?}"
            );
        }
        assert_eq!(
            serde_json::to_string(&t).unwrap(),
            format!("\"{}\"", to_z(&t))
        );
    }

    #[test]
    fn the_text_is_chronos_to_the_byte() {
        let base = Utc.with_ymd_and_hms(2026, 12, 6, 2, 49, 1).unwrap();
        for nanos in [
            0,
            1,
            7,
            1_000,
            207_387_000,
            207_000_000,
            999_999_999,
            100_000_000,
            10,
        ] {
            both(base + chrono::Duration::nanoseconds(nanos));
        }
        for (y, mo, d, h, mi, s) in [
            (0, 1, 1, 0, 0, 0),
            (9, 2, 3, 4, 5, 6),
            (1970, 1, 1, 0, 0, 0),
            (2024, 2, 29, 23, 59, 59),
            (9999, 12, 31, 23, 59, 59),
            (-1, 6, 1, 12, 0, 0),
            (10_000, 1, 1, 0, 0, 0),
        ] {
            both(Utc.with_ymd_and_hms(y, mo, d, h, mi, s).unwrap());
        }
        // A leap second (chrono's nanoseconds past 1e9) is left to chrono, and matches.
        let leap = chrono::NaiveDate::from_ymd_opt(2016, 12, 31)
            .unwrap()
            .and_hms_nano_opt(23, 59, 59, 1_500_000_000)
            .unwrap()
            .and_utc();
        both(leap);
        both(Utc::now());
    }
}
