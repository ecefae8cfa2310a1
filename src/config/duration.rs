//! HOCON-style durations (`"30 seconds"`, `"750 milliseconds"`, `"0 ms"`, `1000`).
//!
//! The original reads durations through Typesafe Config, whose grammar is a
//! number (decimals allowed) followed by an optional unit; a bare number means
//! milliseconds. Existing Divolte configuration files use every spelling, so
//! the same grammar is accepted here rather than a different crate's dialect.

use std::fmt;
use std::time::Duration;

use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;

/// A configuration duration; deserializes from a HOCON duration string or an
/// integer number of milliseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct ConfigDuration(pub Duration);

impl ConfigDuration {
    /// A duration of `ms` milliseconds, usable in `const` defaults.
    pub const fn from_millis(ms: u64) -> Self {
        Self(Duration::from_millis(ms))
    }

    /// A duration of `s` seconds, usable in `const` defaults.
    pub const fn from_secs(s: u64) -> Self {
        Self(Duration::from_secs(s))
    }
}

/// Why a duration string was rejected.
#[derive(Debug, PartialEq, Eq)]
pub enum DurationError {
    /// No number at the start of the text.
    MissingNumber,
    /// The unit is not one Typesafe Config knows.
    UnknownUnit(String),
    /// Negative or too large to represent.
    OutOfRange,
}

impl fmt::Display for DurationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::MissingNumber => f.write_str("expected a number followed by a unit, such as \"30 seconds\""),
            Self::UnknownUnit(u) => {
                write!(f, "unknown duration unit {u:?} (use ns, us, ms, s, m, h or d, or their long names)")
            }
            Self::OutOfRange => f.write_str("duration is negative or too large"),
        }
    }
}

/// Nanoseconds per unit, for every unit name Typesafe Config accepts.
fn unit_nanos(unit: &str) -> Option<f64> {
    let nanos = match unit {
        "" | "ms" | "milli" | "millis" | "millisecond" | "milliseconds" => 1e6,
        "ns" | "nano" | "nanos" | "nanosecond" | "nanoseconds" => 1.0,
        "us" | "micro" | "micros" | "microsecond" | "microseconds" => 1e3,
        "s" | "second" | "seconds" => 1e9,
        "m" | "minute" | "minutes" => 60e9,
        "h" | "hour" | "hours" => 3600e9,
        "d" | "day" | "days" => 86400e9,
        _ => return None,
    };
    Some(nanos)
}

/// Parses a HOCON duration.
///
/// # Errors
/// Returns a [`DurationError`] when the number or the unit is not understood.
pub fn parse_duration(text: &str) -> Result<Duration, DurationError> {
    let text = text.trim();
    let split = text.find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '-' || c == '+')).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: f64 = number.parse().map_err(|_| DurationError::MissingNumber)?;
    let unit = unit.trim();
    let per_unit = unit_nanos(unit).ok_or_else(|| DurationError::UnknownUnit(unit.to_owned()))?;
    let nanos = number * per_unit;
    if !(0.0..=u64::MAX as f64).contains(&nanos) {
        return Err(DurationError::OutOfRange);
    }
    Ok(Duration::from_nanos(nanos.round() as u64))
}

impl<'de> Deserialize<'de> for ConfigDuration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct DurationVisitor;

        impl Visitor<'_> for DurationVisitor {
            type Value = ConfigDuration;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration such as \"30 seconds\" or a number of milliseconds")
            }

            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                u64::try_from(v).map(ConfigDuration::from_millis).map_err(|_| E::custom(DurationError::OutOfRange))
            }

            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                Ok(ConfigDuration::from_millis(v))
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                parse_duration(v).map(ConfigDuration).map_err(E::custom)
            }
        }

        deserializer.deserialize_any(DurationVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_spellings_found_in_divolte_configs() {
        let cases = [
            ("30 seconds", Duration::from_secs(30)),
            ("750 milliseconds", Duration::from_millis(750)),
            ("0 ms", Duration::ZERO),
            ("2 minutes", Duration::from_secs(120)),
            ("1 hour", Duration::from_secs(3600)),
            ("730 days", Duration::from_secs(730 * 86400)),
            ("1.5s", Duration::from_millis(1500)),
            ("250", Duration::from_millis(250)),
            ("10us", Duration::from_micros(10)),
        ];
        for (text, expected) in cases {
            assert_eq!(parse_duration(text), Ok(expected), "{text}");
        }
    }

    #[test]
    fn rejects_unknown_units_and_negative_values() {
        assert_eq!(parse_duration("3 fortnights"), Err(DurationError::UnknownUnit("fortnights".into())));
        assert_eq!(parse_duration("seconds"), Err(DurationError::MissingNumber));
        assert_eq!(parse_duration("-1 s"), Err(DurationError::OutOfRange));
    }
}
