//! Human durations (`2h`, `30m`, `1h30m`, `10s`, `500ms`) and RFC 3339 timestamps, on top
//! of `jiff` (its "friendly" duration format and its RFC 3339 / ISO 8601 parser), so the
//! calendar arithmetic is not ours to get wrong.

use std::time::{Duration, SystemTime};

use jiff::fmt::friendly::{Designator, Spacing, SpanPrinter};
use jiff::{SignedDuration, Span, SpanRelativeTo, Timestamp};

/// Why a duration string was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    #[error("empty duration")]
    Empty,
    #[error("invalid duration `{0}`: expected a number with a unit, e.g. 500ms, 10s, 30m, 2h, 1d, 1h30m")]
    Invalid(String),
    #[error("duration `{text}` is out of range: {why}")]
    Overflow { text: String, why: String },
}

/// Parse `500ms`, `10s`, `30m`, `2h`, `1d` and concatenations such as `1h30m`. A bare number
/// means seconds. Days are 24 hours. Signs, fractions and spaces are refused: a flag value
/// like `1.5h` or `-1s` is more likely a typo than intended.
pub fn parse(text: &str) -> Result<Duration, DurationError> {
    let s = text.trim();
    if s.is_empty() {
        return Err(DurationError::Empty);
    }
    if let Ok(secs) = s.parse::<u64>() {
        return Ok(Duration::from_secs(secs));
    }
    let invalid = || DurationError::Invalid(text.to_string());
    if !s.bytes().all(|b| b.is_ascii_alphanumeric()) || !s.starts_with(|c: char| c.is_ascii_digit())
    {
        return Err(invalid());
    }
    let overflow = |why: String| DurationError::Overflow {
        text: text.to_string(),
        why,
    };
    let span: Span = match s.parse() {
        Ok(span) => span,
        // jiff reports a number beyond a unit's range as a parse error; tell it apart from
        // a malformed string by its shape (digits then unit letters, repeated).
        Err(e) if well_formed(s) => return Err(overflow(e.to_string())),
        Err(_) => return Err(invalid()),
    };
    let d = span
        .to_duration(SpanRelativeTo::days_are_24_hours())
        .map_err(|e| overflow(e.to_string()))?;
    Duration::try_from(d).map_err(|e| overflow(e.to_string()))
}

/// `<digits><unit>` repeated with a known unit, so that only the number can be wrong.
fn well_formed(s: &str) -> bool {
    const UNITS: &[&str] = &[
        "ms", "s", "sec", "secs", "m", "min", "mins", "h", "hr", "hrs", "d",
    ];
    let mut rest = s;
    while !rest.is_empty() {
        let digits = rest.len() - rest.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        let after = &rest[digits..];
        let letters = after.len()
            - after
                .trim_start_matches(|c: char| c.is_ascii_alphabetic())
                .len();
        if digits == 0 || !UNITS.contains(&&after[..letters]) {
            return false;
        }
        rest = &after[letters..];
    }
    true
}

/// `2s`, `300ms`, `1m30s`-style rendering (whole milliseconds).
pub fn format(d: Duration) -> String {
    let ms = d.as_millis();
    if !ms.is_multiple_of(1000) {
        return format!("{ms}ms");
    }
    let printer = SpanPrinter::new()
        .designator(Designator::Compact)
        .spacing(Spacing::None);
    let whole = SignedDuration::from_secs(i64::try_from(ms / 1000).unwrap_or(i64::MAX));
    printer.duration_to_string(&whole)
}

/// RFC 3339 UTC with seconds precision: `2026-11-21T06:25:00Z`.
pub fn rfc3339(t: SystemTime) -> String {
    match Timestamp::try_from(t) {
        Ok(ts) => rfc3339_ts(ts),
        Err(_) => String::new(),
    }
}

/// RFC 3339 UTC with seconds precision of a jiff timestamp.
pub fn rfc3339_ts(ts: Timestamp) -> String {
    ts.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// Seconds since the epoch of an ISO 8601 / RFC 3339 timestamp as written by zap and logrus:
/// `2023-07-17T15:12:07.534Z`, `2023-07-17T15:12:07Z`, `2023-07-17T15:12:07.534+0000`,
/// `2023-07-17T15:12:07+02:00`, `2023-07-17 15:12:07` (no offset: UTC). Fractions are
/// truncated.
pub fn parse_timestamp(ts: &str) -> Option<i64> {
    let s = ts.trim();
    if let Ok(t) = s.parse::<Timestamp>() {
        return Some(t.as_second());
    }
    let civil: jiff::civil::DateTime = s.parse().ok()?;
    jiff::tz::Offset::UTC
        .to_timestamp(civil)
        .ok()
        .map(|t| t.as_second())
}

/// Seconds since the epoch now.
pub fn now_epoch() -> i64 {
    Timestamp::now().as_second()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use std::time::UNIX_EPOCH;

    #[test]
    fn parses_units_and_combinations() {
        assert_eq!(parse("2h").unwrap(), Duration::from_secs(7200));
        assert_eq!(parse("30m").unwrap(), Duration::from_secs(1800));
        assert_eq!(parse("10s").unwrap(), Duration::from_secs(10));
        assert_eq!(parse("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse("1h30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse("1d").unwrap(), Duration::from_secs(86400));
        assert_eq!(parse("15").unwrap(), Duration::from_secs(15));
        assert_eq!(parse(" 2s ").unwrap(), Duration::from_secs(2));
    }

    #[test]
    fn rejects_garbage() {
        assert_eq!(parse(""), Err(DurationError::Empty));
        for bad in ["h", "2x", "-1s", "1.5h", "2 h", "s10", "10s5"] {
            assert!(parse(bad).is_err(), "{bad} accepted");
        }
        assert!(matches!(
            parse("99999999999999999999h"),
            Err(DurationError::Overflow { .. })
        ));
    }

    #[test]
    fn formats() {
        assert_eq!(format(Duration::from_secs(2)), "2s");
        assert_eq!(format(Duration::from_millis(300)), "300ms");
        assert_eq!(format(Duration::from_secs(90)), "1m30s");
        assert_eq!(format(Duration::from_secs(7200)), "2h");
        assert_eq!(format(Duration::ZERO), "0s");
    }

    #[test]
    fn rfc3339_known_instants() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        let t = UNIX_EPOCH + Duration::from_secs(1_795_235_085);
        assert_eq!(rfc3339(t), "2026-11-21T04:24:45Z");
        // Leap day.
        let t = UNIX_EPOCH + Duration::from_secs(951_782_400);
        assert_eq!(rfc3339(t), "2000-02-29T00:00:00Z");
    }

    #[test]
    fn timestamps_round_trip_and_offsets() {
        assert_eq!(parse_timestamp("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            parse_timestamp("2026-11-21T04:24:45.123Z"),
            Some(1_795_235_085)
        );
        assert_eq!(
            parse_timestamp("2026-11-21T06:24:45+02:00"),
            Some(1_795_235_085)
        );
        assert_eq!(
            parse_timestamp("2026-11-21T04:24:45.5-0000"),
            Some(1_795_235_085)
        );
        assert_eq!(parse_timestamp("2026-11-21 04:24:45"), Some(1_795_235_085));
        assert_eq!(parse_timestamp("2000-02-29T00:00:00Z"), Some(951_782_400));
        assert_eq!(parse_timestamp("not a time"), None);
        assert_eq!(parse_timestamp("2026-13-21T03:31:25Z"), None);
        for secs in [0i64, 86_399, 1_000_000_000, 1_795_235_085, 4_102_444_800] {
            let t = UNIX_EPOCH + Duration::from_secs(secs as u64);
            assert_eq!(parse_timestamp(&rfc3339(t)), Some(secs));
        }
    }
}
