//! Go durations (`metav1.Duration`: `10m`, `1h30m`, `1.5s`), parsed with integer arithmetic that
//! cannot overflow. kube's own type multiplies floats into a `std::time::Duration` and panics on
//! `99999999999999999999h`; one such object would crash-loop the operator for everyone.
//!
//! The syntax is Go's `time.ParseDuration`, and so is the ceiling: anything above 2^63-1 ns
//! (about 292 years) is refused, as Go and the API server's CEL refuse it. Ranges that make
//! sense for a field (an interval of at least a second) are the CRD's rules and the spec's
//! accessors' business, not the parser's.

#![deny(clippy::arithmetic_side_effects)]

use crate::scrub::excerpt;
use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::borrow::Cow;
use std::fmt;
use std::time::Duration;
use thiserror::Error;

/// Go's limit: time.Duration is an int64 of nanoseconds.
const MAX_NANOS: u128 = i64::MAX as u128;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum DurationError {
    #[error(
        "{0} is not a duration: expected numbers with units (ns, us, ms, s, m, h), e.g. 10m or 1h30m"
    )]
    Syntax(String),
    #[error("{0} is negative; a duration here must be positive")]
    Negative(String),
    #[error("{0} is longer than any duration can be (2562047h, about 292 years)")]
    TooLarge(String),
}

/// A non-negative Go duration.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct GoDuration(Duration);

impl GoDuration {
    pub const fn from_std(d: Duration) -> GoDuration {
        GoDuration(d)
    }
    pub const fn get(self) -> Duration {
        self.0
    }
}

impl From<GoDuration> for Duration {
    fn from(d: GoDuration) -> Duration {
        d.0
    }
}

/// Parses a Go duration string.
pub fn parse(s: &str) -> Result<GoDuration, DurationError> {
    let shown = || format!("{:?}", excerpt(s, 40));
    let syntax = || DurationError::Syntax(shown());
    let (negative, mut rest) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if rest == "0" {
        return Ok(GoDuration::default());
    }
    if rest.is_empty() {
        return Err(syntax());
    }
    let mut total: u128 = 0;
    while !rest.is_empty() {
        // The integer part, then an optional fraction: at least one digit in all (Go: ".5s", "5.s").
        let int_len = rest.bytes().take_while(u8::is_ascii_digit).count();
        let (int_digits, after) = rest.split_at(int_len);
        let (frac_digits, after) = match after.strip_prefix('.') {
            Some(a) => {
                let n = a.bytes().take_while(u8::is_ascii_digit).count();
                a.split_at(n)
            }
            None => ("", after),
        };
        if int_digits.is_empty() && frac_digits.is_empty() {
            return Err(syntax());
        }
        let unit_len = after
            .char_indices()
            .find(|(_, c)| c.is_ascii_digit() || *c == '.')
            .map_or(after.len(), |(i, _)| i);
        let (unit, after) = after.split_at(unit_len);
        let unit_nanos: u128 = match unit {
            "ns" => 1,
            "us" | "\u{00b5}s" | "\u{03bc}s" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            _ => return Err(syntax()),
        };
        let too_large = || DurationError::TooLarge(shown());
        let mut whole: u128 = 0;
        for d in int_digits.bytes() {
            whole = whole
                .checked_mul(10)
                .and_then(|w| w.checked_add(u128::from(d.wrapping_sub(b'0'))))
                .filter(|w| *w <= MAX_NANOS)
                .ok_or_else(too_large)?;
        }
        // Digits past nanosecond precision of an hour (12 decimals) cannot change the result.
        let mut frac: u128 = 0;
        let mut scale: u128 = 1;
        for d in frac_digits.bytes().take(18) {
            frac = frac
                .saturating_mul(10)
                .saturating_add(u128::from(d.wrapping_sub(b'0')));
            scale = scale.saturating_mul(10);
        }
        let term = whole
            .checked_mul(unit_nanos)
            .and_then(|w| w.checked_add(frac.saturating_mul(unit_nanos).checked_div(scale)?))
            .ok_or_else(too_large)?;
        total = total
            .checked_add(term)
            .filter(|t| *t <= MAX_NANOS)
            .ok_or_else(too_large)?;
        rest = after;
    }
    if negative && total > 0 {
        return Err(DurationError::Negative(shown()));
    }
    const NANOS_PER_SEC: u128 = 1_000_000_000;
    let secs = u64::try_from(total.checked_div(NANOS_PER_SEC).unwrap_or(0))
        .map_err(|_| DurationError::TooLarge(shown()))?;
    let nanos = u32::try_from(total.checked_rem(NANOS_PER_SEC).unwrap_or(0)).unwrap_or(0);
    Ok(GoDuration(Duration::new(secs, nanos)))
}

impl fmt::Display for GoDuration {
    /// A form Go, CEL and this parser all read back: whole seconds, else nanoseconds.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.subsec_nanos() == 0 {
            write!(f, "{}s", self.0.as_secs())
        } else {
            write!(f, "{}ns", self.0.as_nanos())
        }
    }
}

impl Serialize for GoDuration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for GoDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = Cow::<'de, str>::deserialize(d)?;
        parse(&s).map_err(serde::de::Error::custom)
    }
}

impl JsonSchema for GoDuration {
    fn schema_name() -> Cow<'static, str> {
        "Duration".into()
    }
    fn inline_schema() -> bool {
        true
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        // Not format: duration, which means ISO 8601 (as kube's metav1.Duration notes).
        schemars::json_schema!({ "type": "string" })
    }
}

/// `deserialize_with` helpers that name the field in the error, for the operator's
/// "cannot read this object" event, which has no path of its own.
pub mod field {
    use super::GoDuration;
    use serde::{Deserialize, Deserializer};
    use std::borrow::Cow;

    fn named<'de, D: Deserializer<'de>>(d: D, field: &str) -> Result<Option<GoDuration>, D::Error> {
        let s = Option::<Cow<'de, str>>::deserialize(d)?;
        s.map(|s| super::parse(&s))
            .transpose()
            .map_err(|e| serde::de::Error::custom(format!("spec.{field}: {e}")))
    }
    pub fn interval<'de, D: Deserializer<'de>>(d: D) -> Result<Option<GoDuration>, D::Error> {
        named(d, "interval")
    }
    pub fn expiry_warning<'de, D: Deserializer<'de>>(d: D) -> Result<Option<GoDuration>, D::Error> {
        named(d, "expiryWarning")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(s: &str) -> Duration {
        parse(s).unwrap().get()
    }

    #[test]
    fn reads_what_go_reads() {
        assert_eq!(ok("0"), Duration::ZERO);
        assert_eq!(ok("10m"), Duration::from_secs(600));
        assert_eq!(ok("1h30m"), Duration::from_secs(5400));
        assert_eq!(ok("1.5s"), Duration::from_millis(1500));
        assert_eq!(ok(".5s"), Duration::from_millis(500));
        assert_eq!(ok("5.s"), Duration::from_secs(5));
        assert_eq!(ok("720h"), Duration::from_secs(720 * 3600));
        assert_eq!(ok("1\u{00b5}s"), Duration::from_micros(1));
        assert_eq!(ok("2562047h"), Duration::from_secs(2_562_047 * 3600));
        assert_eq!(ok("0.000000000001h"), Duration::from_nanos(3));
    }

    #[test]
    fn refuses_without_panicking() {
        for s in [
            "",
            "h",
            "10",
            "10 minutes",
            "1e3s",
            "..s",
            "NaNs",
            "infh",
            "1d",
            "-",
            "+",
        ] {
            assert!(
                matches!(parse(s), Err(DurationError::Syntax(_))),
                "{s:?}: {:?}",
                parse(s)
            );
        }
        for s in [
            "99999999999999999999h",
            "2562048h",
            "9223372036854775808ns",
            "2562047h2562047h",
            &format!("{}h", "9".repeat(10_000)),
        ] {
            let e = parse(s).unwrap_err();
            assert!(matches!(e, DurationError::TooLarge(_)), "{s}: {e}");
            assert!(e.to_string().len() < 200, "the message quotes an excerpt");
        }
        assert!(matches!(
            parse("99999999999999999999h"),
            Err(DurationError::TooLarge(_))
        ));
        assert!(matches!(parse("-5m"), Err(DurationError::Negative(_))));
    }

    #[test]
    fn round_trips_through_its_own_form() {
        for s in ["10m", "1.5s", "1ns", "2562047h"] {
            let d = parse(s).unwrap();
            assert_eq!(parse(&d.to_string()).unwrap(), d, "{s} -> {d}");
        }
    }
}
