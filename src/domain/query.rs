//! Filters as the list and audit-log screens and the API take them: date ranges (`YYYY-MM-DD`,
//! UTC, a date-only end including that whole day, or RFC 3339) and search terms.

use super::ValidationError;
use chrono::{DateTime, Days, NaiveDate, NaiveTime, Utc};

/// Checks a search term as typed (a part of a name, or an id). Names and ids hold no control
/// characters, so a term with one could match nothing; it is refused by name instead (PostgreSQL
/// cannot even compare text holding NUL).
pub fn check_search(field: &str, raw: &str) -> Result<(), ValidationError> {
    super::validation::no_control_characters(field, field, raw, &[])
}

/// Which end of a range a date-only value stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bound {
    Start,
    End,
}

/// Parses a range bound; an empty string means "unbounded". For `Bound::End`, a date-only value
/// becomes the start of the next day, used as an exclusive upper bound.
pub fn parse_bound(
    field: &str,
    raw: &str,
    bound: Bound,
) -> Result<Option<DateTime<Utc>>, ValidationError> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Ok(None);
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(raw) {
        let t = t.with_timezone(&Utc);
        // An exact instant as an end bound is inclusive: nudge it to exclusive.
        return Ok(Some(match bound {
            Bound::Start => t,
            Bound::End => t + chrono::Duration::microseconds(1),
        }));
    }
    let date = NaiveDate::parse_from_str(raw, "%Y-%m-%d").map_err(|_| {
        ValidationError::new(
            field,
            format!("{field} must be a date (YYYY-MM-DD) or an RFC 3339 time"),
        )
    })?;
    let date = match bound {
        Bound::Start => date,
        Bound::End => date
            .checked_add_days(Days::new(1))
            .ok_or_else(|| ValidationError::new(field, format!("{field} is out of range")))?,
    };
    Ok(Some(date.and_time(NaiveTime::MIN).and_utc()))
}

/// A half-open range: `(from, before)`, either end open.
pub type Range = (Option<DateTime<Utc>>, Option<DateTime<Utc>>);

/// Parses both ends and checks their order.
pub fn parse_range(start: &str, end: &str) -> Result<Range, ValidationError> {
    let s = parse_bound("start", start, Bound::Start)?;
    let e = parse_bound("end", end, Bound::End)?;
    if let (Some(s), Some(e)) = (s, e) {
        if e <= s {
            return Err(ValidationError::new(
                "end",
                "End Date must not be before Start Date",
            ));
        }
    }
    Ok((s, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn date_only_end_includes_the_whole_day() {
        let (s, e) = parse_range("2026-11-01", "2026-11-01").unwrap();
        assert_eq!(s.unwrap().to_rfc3339(), "2026-11-01T00:00:00+00:00");
        assert_eq!(e.unwrap().to_rfc3339(), "2026-11-02T00:00:00+00:00");
    }

    #[test]
    fn rfc3339_and_empty_are_accepted_garbage_is_named() {
        let (s, e) = parse_range("2026-11-01T10:00:00+02:00", "").unwrap();
        assert_eq!(s.unwrap().to_rfc3339(), "2026-11-01T08:00:00+00:00");
        assert!(e.is_none());
        assert_eq!(parse_range("yesterday", "").unwrap_err().field, "start");
        assert_eq!(
            parse_range("2026-11-05", "2026-11-01").unwrap_err().field,
            "end"
        );
    }
}
