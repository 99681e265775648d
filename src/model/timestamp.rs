//! Timestamps in the form that the AWS JSON protocol uses.

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::de::{self, Deserialize, Deserializer, Unexpected};
use serde::ser::{Serialize, Serializer};

const NANOS_PER_SECOND: i64 = 1_000_000_000;
const NANOS_PER_MICRO: i64 = 1_000;

/// Largest magnitude in seconds that still fits in `i64` nanoseconds
/// (about 292 years either side of 1970).
const MAX_ABS_SECONDS: f64 = 9_223_372_036.0;

/// Point in time, stored as nanoseconds since the Unix epoch (1970-01-01T00:00:00Z).
///
/// In JSON a timestamp is a number of seconds since the epoch with a fractional
/// part, for example `1479816991.349`, which is how Lightsail sends `createdAt`.
/// That number is an `f64`, so the JSON form keeps microseconds but not
/// nanoseconds: deserializing rounds to the nearest microsecond. For instants
/// between the years 1834 and 2106 (within 2^32 seconds of the epoch), a
/// timestamp with whole microseconds comes back from JSON unchanged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

impl Timestamp {
    /// Returns the current system time.
    ///
    /// Saturates at `i64::MIN` or `i64::MAX` nanoseconds outside the years
    /// 1677 to 2262, which `i64` nanoseconds cannot represent.
    pub fn now() -> Self {
        let nanos = match SystemTime::now().duration_since(UNIX_EPOCH) {
            Ok(since_epoch) => i64::try_from(since_epoch.as_nanos()).unwrap_or(i64::MAX),
            Err(before_epoch) => {
                i64::try_from(before_epoch.duration().as_nanos()).map_or(i64::MIN, |nanos| -nanos)
            }
        };
        Self(nanos)
    }

    /// Creates a timestamp from nanoseconds since the Unix epoch.
    pub const fn from_unix_nanos(nanos: i64) -> Self {
        Self(nanos)
    }

    /// Returns the nanoseconds since the Unix epoch. Negative values are before 1970.
    pub const fn unix_nanos(self) -> i64 {
        self.0
    }

    /// Returns the seconds since the Unix epoch, as the JSON form carries them.
    ///
    /// The result differs from the exact value by about half the spacing of
    /// `f64` values at that size: at most 0.12 µs for dates from 2004 to 2038
    /// and 0.24 µs up to 2106.
    pub fn as_epoch_seconds(self) -> f64 {
        let seconds = self.0.div_euclid(NANOS_PER_SECOND);
        let nanos = self.0.rem_euclid(NANOS_PER_SECOND);
        // Both casts are exact: |seconds| < 2^34 and nanos < 10^9, both below 2^53.
        #[allow(clippy::cast_precision_loss)]
        let (seconds, nanos) = (seconds as f64, nanos as f64);
        seconds + nanos / 1e9
    }

    /// Creates a timestamp from seconds since the Unix epoch, rounded to the
    /// nearest microsecond.
    ///
    /// Returns `None` for NaN, infinities and instants that `i64` nanoseconds
    /// cannot represent.
    pub fn from_epoch_seconds(seconds: f64) -> Option<Self> {
        if !seconds.is_finite() || seconds.abs() > MAX_ABS_SECONDS {
            return None;
        }

        // Split before scaling so that the fraction keeps all of the f64's
        // precision. The subtraction is exact, and rounding the fraction may
        // carry a whole second (micros == 1_000_000), which the sum absorbs.
        let whole = seconds.floor();
        let micros = ((seconds - whole) * 1e6).round();

        // Both casts are in range: |whole| <= MAX_ABS_SECONDS and
        // micros is in 0..=1_000_000, both integral after floor and round.
        #[allow(clippy::cast_possible_truncation)]
        let (whole, micros) = (whole as i64, micros as i64);

        let nanos = whole
            .checked_mul(NANOS_PER_SECOND)?
            .checked_add(micros * NANOS_PER_MICRO)?;
        Some(Self(nanos))
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_f64(self.as_epoch_seconds())
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let seconds = f64::deserialize(deserializer)?;
        Self::from_epoch_seconds(seconds).ok_or_else(|| {
            de::Error::invalid_value(Unexpected::Float(seconds), &EpochSecondsInRange)
        })
    }
}

/// The `Expected` text of the error for an out-of-range timestamp.
struct EpochSecondsInRange;

impl de::Expected for EpochSecondsInRange {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            formatter,
            "seconds since the Unix epoch between -{MAX_ABS_SECONDS} and {MAX_ABS_SECONDS}"
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn to_json(timestamp: Timestamp) -> String {
        serde_json::to_string(&timestamp).unwrap_or_default()
    }

    fn from_json(json: &str) -> Option<Timestamp> {
        serde_json::from_str(json).ok()
    }

    #[test]
    fn serializes_fractional_seconds() {
        let timestamp = Timestamp::from_unix_nanos(1_479_816_991_349_000_000);
        assert_eq!(to_json(timestamp), "1479816991.349");
    }

    #[test]
    fn serializes_whole_seconds_with_fraction() {
        let timestamp = Timestamp::from_unix_nanos(1_479_816_991 * NANOS_PER_SECOND);
        assert_eq!(to_json(timestamp), "1479816991.0");
    }

    #[test]
    fn serializes_before_epoch() {
        let timestamp = Timestamp::from_unix_nanos(-1_500_000_000);
        assert_eq!(to_json(timestamp), "-1.5");
    }

    #[test]
    fn deserializes_fractional_seconds() {
        let expected = Timestamp::from_unix_nanos(1_479_816_991_349_000_000);
        assert_eq!(from_json("1479816991.349"), Some(expected));
    }

    #[test]
    fn deserializes_integer_seconds() {
        let expected = Timestamp::from_unix_nanos(1_479_816_991 * NANOS_PER_SECOND);
        assert_eq!(from_json("1479816991"), Some(expected));
    }

    #[test]
    fn deserializes_before_epoch() {
        assert_eq!(
            from_json("-1.5"),
            Some(Timestamp::from_unix_nanos(-1_500_000_000))
        );
        assert_eq!(
            from_json("-0.000001"),
            Some(Timestamp::from_unix_nanos(-1_000))
        );
    }

    #[test]
    fn deserializing_rounds_to_microseconds() {
        let expected = Timestamp::from_unix_nanos(1_700_000_000_123_457_000);
        assert_eq!(from_json("1700000000.1234567"), Some(expected));
    }

    #[test]
    fn rounding_carries_into_next_second() {
        let expected = Timestamp::from_unix_nanos(2 * NANOS_PER_SECOND);
        assert_eq!(from_json("1.9999999"), Some(expected));
    }

    #[test]
    fn rejects_out_of_range_and_non_numbers() {
        assert_eq!(from_json("1e300"), None);
        assert_eq!(from_json("-9300000000"), None);
        assert_eq!(from_json("\"1479816991.349\""), None);
        assert_eq!(from_json("null"), None);
        assert_eq!(Timestamp::from_epoch_seconds(f64::NAN), None);
        assert_eq!(Timestamp::from_epoch_seconds(f64::INFINITY), None);
    }

    #[test]
    fn accepts_range_limits() {
        let max = Timestamp::from_epoch_seconds(9_223_372_036.0);
        assert_eq!(
            max,
            Some(Timestamp::from_unix_nanos(9_223_372_036 * NANOS_PER_SECOND))
        );

        let min = Timestamp::from_epoch_seconds(-9_223_372_036.0);
        assert_eq!(
            min,
            Some(Timestamp::from_unix_nanos(
                -9_223_372_036 * NANOS_PER_SECOND
            ))
        );
    }

    #[test]
    fn out_of_range_error_names_value() {
        let message = serde_json::from_str::<Timestamp>("1e300")
            .err()
            .map(|error| error.to_string())
            .unwrap_or_default();
        assert!(message.contains("1e+300"), "{message}");
        assert!(
            message.contains("seconds since the Unix epoch"),
            "{message}"
        );
    }

    #[test]
    fn now_is_after_2020() {
        let start_of_2020 = Timestamp::from_unix_nanos(1_577_836_800 * NANOS_PER_SECOND);
        assert!(Timestamp::now() > start_of_2020);
    }

    #[test]
    fn orders_by_instant() {
        let earlier = Timestamp::from_unix_nanos(-5);
        let later = Timestamp::from_unix_nanos(5);
        assert!(earlier < later);
        assert_eq!(later.unix_nanos(), 5);
    }

    proptest! {
        #[test]
        fn microsecond_values_round_trip(micros in -(1_i64 << 32) * 1_000_000..(1_i64 << 32) * 1_000_000) {
            let timestamp = Timestamp::from_unix_nanos(micros * NANOS_PER_MICRO);
            prop_assert_eq!(from_json(&to_json(timestamp)), Some(timestamp));
        }

        #[test]
        fn nanosecond_values_stay_within_a_microsecond(nanos in -(1_i64 << 32) * NANOS_PER_SECOND..(1_i64 << 32) * NANOS_PER_SECOND) {
            // The f64 is off by at most 0.24 µs within 2^32 s of the epoch, and
            // rounding to whole microseconds adds at most 0.5 µs.
            let decoded = from_json(&to_json(Timestamp::from_unix_nanos(nanos)));
            let error_nanos = decoded.map(|timestamp| (timestamp.unix_nanos() - nanos).abs());
            prop_assert!(error_nanos.is_some_and(|error| error < NANOS_PER_MICRO), "{} became {:?}", nanos, decoded);
        }
    }
}
