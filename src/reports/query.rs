//! The query string of the intended endpoints
//! (`GET /api/v1/reports/agents?from=…&to=…&bucket=1h&tz=Europe/Paris&format=csv`,
//! and `/api/v1/reports/channels?…`, docs/REPORTS.md): parsed here, purely,
//! so the HTTP handler only maps a [`QueryError`] to a 400.
//!
//! `from` and `to` each take Unix milliseconds (`1765000000000`), an RFC 3339
//! instant with its offset (`2026-03-29T08:00:00+02:00`), or a local date
//! (`2026-03-29`: its first instant in `tz`, so `from=2026-03-29&to=2026-03-30`
//! is that local day, 23 hours long in Paris). Every parameter may appear
//! once; an unknown one is refused, so a misspelt `bukcet=1d` is not
//! silently an hourly report.

use super::buckets::{self, Bucket};
use super::{ReportError, ReportRequest};
use crate::domain::ChannelRef;
use jiff::civil::Date;
use jiff::Timestamp;

/// The format asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Json,
    Csv,
}

impl Format {
    /// The `Content-Type` of a response in this format.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Json => "application/json",
            Format::Csv => "text/csv; charset=utf-8; header=present",
        }
    }
}

/// A parsed, valid query.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReportQuery {
    pub from_ms: u64,
    pub until_ms: u64,
    pub bucket: Bucket,
    pub time_zone: String,
    pub format: Format,
}

impl ReportQuery {
    /// The request for [`compute`](super::compute()), limited to a scoped supervisor's
    /// channels (`None`: admins and unscoped supervisors).
    pub fn request(&self, scope: Option<Vec<ChannelRef>>) -> ReportRequest {
        ReportRequest {
            from_ms: self.from_ms,
            until_ms: self.until_ms,
            bucket: self.bucket,
            time_zone: self.time_zone.clone(),
            scope,
        }
    }
}

/// Why a query was refused (a 400 whose message is this error's text).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    #[error("missing parameter `{0}`")]
    Missing(&'static str),
    #[error("parameter `{0}` is given more than once")]
    Repeated(String),
    #[error("unknown parameter `{0}` (known: from, to, bucket, tz, format)")]
    Unknown(String),
    #[error("`{param}` must be Unix milliseconds, an RFC 3339 instant or a date (YYYY-MM-DD), not {value:?}")]
    BadTime { param: &'static str, value: String },
    #[error("`bucket` must be 15m, 1h or 1d, not {0:?}")]
    BadBucket(String),
    #[error("`format` must be json or csv, not {0:?}")]
    BadFormat(String),
    #[error("the query is not valid percent-encoded UTF-8")]
    BadEncoding,
    #[error(transparent)]
    Report(#[from] ReportError),
}

/// Longest query string read: well above any valid one.
const MAX_QUERY_LEN: usize = 1024;

/// Percent-decoding of one `application/x-www-form-urlencoded` component.
fn decode(s: &str) -> Result<String, QueryError> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = bytes
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or(QueryError::BadEncoding)?;
                out.push(hex);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).map_err(|_| QueryError::BadEncoding)
}

fn clip(value: &str) -> String {
    // Errors echo the value: keep them short whatever was sent.
    value.chars().take(64).collect()
}

fn time(param: &'static str, value: &str, tz: &jiff::tz::TimeZone) -> Result<u64, QueryError> {
    let bad = || QueryError::BadTime {
        param,
        value: clip(value),
    };
    let ms = if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        value.parse::<u64>().map_err(|_| bad())?
    } else if let Ok(ts) = value.parse::<Timestamp>() {
        u64::try_from(ts.as_millisecond()).map_err(|_| bad())?
    } else if let Ok(date) = value.parse::<Date>() {
        let start = date.to_zoned_datetime(tz.clone()).map_err(|_| bad())?;
        u64::try_from(start.timestamp().as_millisecond()).map_err(|_| bad())?
    } else {
        return Err(bad());
    };
    Ok(ms)
}

/// Parses the query string (without the `?`).
pub fn parse_query(query: &str) -> Result<ReportQuery, QueryError> {
    if query.len() > MAX_QUERY_LEN {
        return Err(QueryError::BadEncoding);
    }
    let (mut from, mut to, mut bucket, mut tz, mut format) = (None, None, None, None, None);
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let (k, v) = (decode(k)?, decode(v)?);
        let slot = match k.as_str() {
            "from" => &mut from,
            "to" => &mut to,
            "bucket" => &mut bucket,
            "tz" => &mut tz,
            "format" => &mut format,
            _ => return Err(QueryError::Unknown(clip(&k))),
        };
        if slot.replace(v).is_some() {
            return Err(QueryError::Repeated(k));
        }
    }
    let time_zone = tz.unwrap_or_else(|| "UTC".to_string());
    let zone = buckets::time_zone(&time_zone)?;
    let from_ms = time("from", &from.ok_or(QueryError::Missing("from"))?, &zone)?;
    let until_ms = time("to", &to.ok_or(QueryError::Missing("to"))?, &zone)?;
    let bucket = match bucket {
        None => Bucket::Hour,
        Some(b) => Bucket::parse(&b).ok_or_else(|| QueryError::BadBucket(clip(&b)))?,
    };
    let format = match format.as_deref() {
        None | Some("json") => Format::Json,
        Some("csv") => Format::Csv,
        Some(other) => return Err(QueryError::BadFormat(clip(other))),
    };
    // The window and its bucket count are checked now, so a handler refuses
    // a bad query before it reads any history.
    buckets::spans(from_ms, until_ms, bucket, &zone)?;
    Ok(ReportQuery {
        from_ms,
        until_ms,
        bucket,
        time_zone,
        format,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_local_day_in_paris_as_csv() {
        let q = parse_query("from=2026-03-29&to=2026-03-30&bucket=1d&tz=Europe%2FParis&format=csv")
            .expect("valid");
        assert_eq!(q.until_ms - q.from_ms, 23 * 3_600_000);
        assert_eq!(q.from_ms, 1_774_738_800_000, "2026-03-28T23:00:00Z");
        assert_eq!((q.bucket, q.format), (Bucket::Day, Format::Csv));
        assert_eq!(q.time_zone, "Europe/Paris");
        let r = q.request(None);
        assert_eq!(
            (r.from_ms, r.until_ms, r.scope),
            (q.from_ms, q.until_ms, None)
        );
    }

    #[test]
    fn instants_and_milliseconds_and_defaults() {
        let q = parse_query("from=2026-03-29T08:00:00%2B02:00&to=1774771200000").expect("valid");
        assert_eq!(q.from_ms, 1_774_764_000_000);
        assert_eq!(q.until_ms, 1_774_771_200_000);
        assert_eq!(
            (q.bucket, q.format, q.time_zone.as_str()),
            (Bucket::Hour, Format::Json, "UTC")
        );
    }

    #[test]
    fn bad_queries_are_typed_errors() {
        let cases: [(&str, QueryError); 12] = [
            ("to=5", QueryError::Missing("from")),
            ("from=5", QueryError::Missing("to")),
            ("from=1&from=2&to=3", QueryError::Repeated("from".into())),
            (
                "from=1&to=2&bukcet=1d",
                QueryError::Unknown("bukcet".into()),
            ),
            (
                "from=yesterday&to=2",
                QueryError::BadTime {
                    param: "from",
                    value: "yesterday".into(),
                },
            ),
            (
                "from=1&to=99999999999999999999999",
                QueryError::BadTime {
                    param: "to",
                    value: "99999999999999999999999".into(),
                },
            ),
            ("from=1&to=2&bucket=5m", QueryError::BadBucket("5m".into())),
            (
                "from=1&to=2&format=xml",
                QueryError::BadFormat("xml".into()),
            ),
            ("from=1&to=2&tz=%ZZ", QueryError::BadEncoding),
            ("from=1&to=2&tz=%C3", QueryError::BadEncoding),
            ("from=5&to=5", QueryError::Report(ReportError::EmptyWindow)),
            (
                "from=1&to=2&tz=Mars%2FOlympus",
                QueryError::Report(ReportError::UnknownTimeZone("Mars/Olympus".into())),
            ),
        ];
        for (query, want) in cases {
            assert_eq!(parse_query(query), Err(want), "{query}");
        }
        assert_eq!(
            parse_query("from=2026-01-01&to=2027-01-01&bucket=15m"),
            Err(QueryError::Report(ReportError::TooManyBuckets {
                max: buckets::MAX_BUCKETS
            }))
        );
        assert_eq!(
            parse_query(&"x".repeat(MAX_QUERY_LEN + 1)),
            Err(QueryError::BadEncoding)
        );
        // Odd but harmless: empty pairs are skipped, a trailing % is an error.
        assert!(parse_query("&&from=1&&to=2&").is_ok());
        assert_eq!(parse_query("from=1&to=2%"), Err(QueryError::BadEncoding));
        let long = format!("from=1&to=2&bucket={}", "y".repeat(500));
        match parse_query(&long) {
            Err(QueryError::BadBucket(v)) => assert_eq!(v.len(), 64),
            other => panic!("{other:?}"),
        }
    }
}
