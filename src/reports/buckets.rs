//! Buckets: cutting a window `[from_ms, until_ms)` into 15-minute, hourly or
//! daily slices of a time zone's **local** clock, DST-correct.
//!
//! Day buckets run from one local midnight to the next (23 or 25 hours on a
//! DST change day; where a zone skips midnight itself, the day starts at the
//! first instant that exists). 15-minute and hourly buckets follow the local
//! clock too, so a zone at +05:30 gets hours starting at :30 UTC, and a
//! fall-back night has two buckets labelled `02:00`, told apart by their
//! offsets (`+02:00` then `+01:00`). A zone whose DST shift is not a whole
//! number of bucket lengths (Lord Howe's 30 minutes, for hourly buckets) gets
//! one shorter or longer bucket at the change; buckets always cover the
//! window contiguously, never overlap and never go backwards.

use super::ReportError;
use jiff::tz::TimeZone;
use jiff::Timestamp;

/// Most buckets one report may hold: a 31-day month of 15-minute buckets.
/// Bounds the memory of a report (agents × buckets) whatever the query says.
pub const MAX_BUCKETS: usize = 31 * 96;

/// The bucket size of a report.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Bucket {
    /// 15 minutes of the local clock.
    Minutes15,
    /// One hour of the local clock.
    Hour,
    /// One local day (midnight to midnight: 23, 24 or 25 hours).
    Day,
}

impl Bucket {
    /// The name used in queries and in the reports: `15m`, `1h`, `1d`.
    pub fn as_str(self) -> &'static str {
        match self {
            Bucket::Minutes15 => "15m",
            Bucket::Hour => "1h",
            Bucket::Day => "1d",
        }
    }

    /// Reads `15m`, `1h` or `1d`.
    pub fn parse(s: &str) -> Option<Bucket> {
        match s {
            "15m" => Some(Bucket::Minutes15),
            "1h" => Some(Bucket::Hour),
            "1d" => Some(Bucket::Day),
            _ => None,
        }
    }

    fn clock_ms(self) -> Option<i64> {
        match self {
            Bucket::Minutes15 => Some(15 * 60_000),
            Bucket::Hour => Some(3_600_000),
            Bucket::Day => None,
        }
    }
}

/// One bucket of a report, clipped to the window.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BucketSpan {
    /// The bucket's nominal start on the local clock, RFC 3339 with the
    /// offset in force then (`2026-10-25T02:00:00+01:00`). For the first
    /// bucket this may be before `from_ms` when the window starts mid-bucket.
    pub start: String,
    /// Where the bucket's figures start: the later of its start and the window's.
    pub from_ms: u64,
    /// Where they end: the earlier of its end and the window's.
    pub until_ms: u64,
}

/// Looks up an IANA time zone name (`Europe/Paris`) in the bundled database.
pub fn time_zone(name: &str) -> Result<TimeZone, ReportError> {
    // An empty or absurdly long name is refused before the lookup: it is
    // query input, and the error message repeats it.
    if name.is_empty() || name.len() > 64 {
        return Err(ReportError::UnknownTimeZone(
            name.chars().take(64).collect(),
        ));
    }
    TimeZone::get(name).map_err(|_| ReportError::UnknownTimeZone(name.to_string()))
}

fn timestamp(ms: i64) -> Result<Timestamp, ReportError> {
    Timestamp::from_millisecond(ms).map_err(|_| ReportError::TimeOutOfRange)
}

fn to_i64(ms: u64) -> Result<i64, ReportError> {
    i64::try_from(ms).map_err(|_| ReportError::TimeOutOfRange)
}

/// The start of the local bucket holding instant `ms`.
fn floor(ms: i64, bucket: Bucket, tz: &TimeZone) -> Result<i64, ReportError> {
    let ts = timestamp(ms)?;
    match bucket.clock_ms() {
        Some(unit) => {
            // Floor on the local clock with the offset in force at `ms`:
            // exact while the offset does not change inside the bucket,
            // which holds for every DST change on a 15-minute boundary.
            let offset_ms = i64::from(tz.to_offset(ts).seconds()) * 1000;
            let local = ms + offset_ms;
            Ok(local - local.rem_euclid(unit) - offset_ms)
        }
        None => {
            let day = ts.to_zoned_datetime(tz.clone());
            let start = day
                .start_of_day()
                .map_err(|_| ReportError::TimeOutOfRange)?;
            Ok(start.timestamp().as_millisecond())
        }
    }
}

/// The start of the bucket after the one starting at `start`.
fn next(start: i64, bucket: Bucket, tz: &TimeZone) -> Result<i64, ReportError> {
    let candidate = match bucket.clock_ms() {
        Some(unit) => floor(start + unit, bucket, tz)?,
        None => {
            let day = timestamp(start)?.to_zoned_datetime(tz.clone());
            let tomorrow = day
                .date()
                .tomorrow()
                .and_then(|d| d.to_zoned_datetime(tz.clone()))
                .map_err(|_| ReportError::TimeOutOfRange)?;
            tomorrow.timestamp().as_millisecond()
        }
    };
    // A shift that is not a whole number of buckets (a 30-minute DST on
    // hourly buckets) can floor back to or before `start`: step on by the
    // bucket's absolute length instead, so buckets always move forward.
    Ok(if candidate > start {
        candidate
    } else {
        start + bucket.clock_ms().unwrap_or(86_400_000)
    })
}

/// The buckets covering `[from_ms, until_ms)`, each clipped to the window.
pub fn spans(
    from_ms: u64,
    until_ms: u64,
    bucket: Bucket,
    tz: &TimeZone,
) -> Result<Vec<BucketSpan>, ReportError> {
    if from_ms >= until_ms {
        return Err(ReportError::EmptyWindow);
    }
    let (from, until) = (to_i64(from_ms)?, to_i64(until_ms)?);
    // Both ends must be instants the time zone database can place.
    timestamp(until)?;
    let mut out = Vec::new();
    let mut start = floor(from, bucket, tz)?;
    while start < until {
        if out.len() == MAX_BUCKETS {
            return Err(ReportError::TooManyBuckets { max: MAX_BUCKETS });
        }
        let end = next(start, bucket, tz)?;
        let ts = timestamp(start)?;
        out.push(BucketSpan {
            start: ts.display_with_offset(tz.to_offset(ts)).to_string(),
            // Both clipped values lie in [from, until], so they are
            // non-negative and fit back into u64.
            from_ms: u64::try_from(start.max(from)).map_err(|_| ReportError::TimeOutOfRange)?,
            until_ms: u64::try_from(end.min(until)).map_err(|_| ReportError::TimeOutOfRange)?,
        });
        start = end;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paris() -> TimeZone {
        time_zone("Europe/Paris").expect("bundled")
    }

    fn ms(rfc3339: &str) -> u64 {
        let ts: Timestamp = rfc3339.parse().expect("instant");
        u64::try_from(ts.as_millisecond()).expect("after 1970")
    }

    #[test]
    fn a_spring_forward_day_is_23_hours_and_a_fall_back_day_25() {
        let tz = paris();
        let spring = spans(
            ms("2026-03-29T00:00:00+01:00"),
            ms("2026-03-30T00:00:00+02:00"),
            Bucket::Day,
            &tz,
        )
        .expect("spans");
        assert_eq!(spring.len(), 1);
        assert_eq!(spring[0].until_ms - spring[0].from_ms, 23 * 3_600_000);
        assert_eq!(spring[0].start, "2026-03-29T00:00:00+01:00");
        let fall = spans(
            ms("2026-10-25T00:00:00+02:00"),
            ms("2026-10-26T00:00:00+01:00"),
            Bucket::Day,
            &tz,
        )
        .expect("spans");
        assert_eq!(fall.len(), 1);
        assert_eq!(fall[0].until_ms - fall[0].from_ms, 25 * 3_600_000);
    }

    #[test]
    fn hourly_buckets_skip_the_missing_hour_and_repeat_the_doubled_one() {
        let tz = paris();
        let spring = spans(
            ms("2026-03-29T00:00:00+01:00"),
            ms("2026-03-29T05:00:00+02:00"),
            Bucket::Hour,
            &tz,
        )
        .expect("spans");
        let starts: Vec<&str> = spring.iter().map(|s| s.start.as_str()).collect();
        assert_eq!(
            starts,
            [
                "2026-03-29T00:00:00+01:00",
                "2026-03-29T01:00:00+01:00",
                "2026-03-29T03:00:00+02:00",
                "2026-03-29T04:00:00+02:00"
            ]
        );
        let fall = spans(
            ms("2026-10-25T01:00:00+02:00"),
            ms("2026-10-25T04:00:00+01:00"),
            Bucket::Hour,
            &tz,
        )
        .expect("spans");
        let starts: Vec<&str> = fall.iter().map(|s| s.start.as_str()).collect();
        assert_eq!(
            starts,
            [
                "2026-10-25T01:00:00+02:00",
                "2026-10-25T02:00:00+02:00",
                "2026-10-25T02:00:00+01:00",
                "2026-10-25T03:00:00+01:00"
            ]
        );
        assert!(fall.iter().all(|s| s.until_ms - s.from_ms == 3_600_000));
    }

    #[test]
    fn buckets_follow_the_local_clock_and_are_clipped_to_the_window() {
        let tz = time_zone("Asia/Kolkata").expect("bundled");
        let b = spans(
            ms("2026-01-01T10:10:00+05:30"),
            ms("2026-01-01T11:20:00+05:30"),
            Bucket::Hour,
            &tz,
        )
        .expect("spans");
        assert_eq!(b.len(), 2);
        assert_eq!(b[0].start, "2026-01-01T10:00:00+05:30");
        assert_eq!(b[0].from_ms, ms("2026-01-01T10:10:00+05:30"));
        assert_eq!(b[1].until_ms, ms("2026-01-01T11:20:00+05:30"));
        let q = spans(
            ms("2026-01-01T10:10:00+05:30"),
            ms("2026-01-01T10:50:00+05:30"),
            Bucket::Minutes15,
            &tz,
        )
        .expect("spans");
        let lengths: Vec<u64> = q
            .iter()
            .map(|s| (s.until_ms - s.from_ms) / 60_000)
            .collect();
        assert_eq!(lengths, [5, 15, 15, 5]);
    }

    #[test]
    fn a_half_hour_shift_still_moves_forward_contiguously() {
        // Lord Howe: +11 in summer, +10:30 in winter; falls back at 02:00.
        let tz = time_zone("Australia/Lord_Howe").expect("bundled");
        let (from, until) = (
            ms("2026-04-04T22:00:00+11:00"),
            ms("2026-04-05T06:00:00+10:30"),
        );
        for bucket in [Bucket::Minutes15, Bucket::Hour, Bucket::Day] {
            let b = spans(from, until, bucket, &tz).expect("spans");
            assert_eq!(b[0].from_ms, from);
            assert_eq!(b.last().map(|s| s.until_ms), Some(until));
            assert!(b.windows(2).all(|w| w[0].until_ms == w[1].from_ms));
            assert!(b.iter().all(|s| s.from_ms < s.until_ms));
        }
    }

    #[test]
    fn bad_windows_and_zones_are_errors_not_panics() {
        let tz = paris();
        assert_eq!(
            spans(5, 5, Bucket::Hour, &tz),
            Err(ReportError::EmptyWindow)
        );
        assert_eq!(
            spans(9, 5, Bucket::Hour, &tz),
            Err(ReportError::EmptyWindow)
        );
        assert_eq!(
            spans(0, u64::MAX, Bucket::Day, &tz),
            Err(ReportError::TimeOutOfRange)
        );
        assert_eq!(
            spans(0, 365 * 86_400_000, Bucket::Minutes15, &tz),
            Err(ReportError::TooManyBuckets { max: MAX_BUCKETS })
        );
        assert!(matches!(
            time_zone("Mars/Olympus"),
            Err(ReportError::UnknownTimeZone(_))
        ));
        assert!(matches!(
            time_zone(""),
            Err(ReportError::UnknownTimeZone(_))
        ));
        assert!(matches!(
            time_zone(&"x".repeat(10_000)),
            Err(ReportError::UnknownTimeZone(n)) if n.len() == 64
        ));
        assert_eq!(Bucket::parse("1h"), Some(Bucket::Hour));
        assert_eq!(Bucket::parse("60m"), None);
    }
}
