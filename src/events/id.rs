//! An event's id: `<ms>-<n>`, the form of a Redis Stream entry id.
//!
//! Why that form everywhere, not only on Redis: a consumer reads the same
//! ids from the Redis Stream, from `GET /api/v1/events` and from
//! `presence-hub events tail`, whichever store the hub runs on, and can
//! start from a time (`from_ms`). `ms` is the store's clock when the event
//! was appended, never going back (a clock stepping back repeats the last
//! `ms` with a higher `n`), so ids grow strictly in the order events are
//! appended — which is version order.

use std::fmt;
use std::str::FromStr;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EventId {
    pub ms: u64,
    pub n: u64,
}

impl EventId {
    /// The id of the next event appended at `now_ms` after `last`.
    pub fn next(last: Option<EventId>, now_ms: u64) -> EventId {
        match last {
            Some(last) if last.ms >= now_ms => EventId {
                ms: last.ms,
                n: last.n + 1,
            },
            _ => EventId { ms: now_ms, n: 0 },
        }
    }
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.ms, self.n)
    }
}

/// Why a string is not an event id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not an event id (expected <ms>-<n>, as 1765000000000-0): {0:?}")]
pub struct BadEventId(pub String);

impl FromStr for EventId {
    type Err = BadEventId;

    /// `<ms>-<n>`, or `<ms>` alone (then `n` is 0), as Redis accepts.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || BadEventId(s.chars().take(64).collect());
        let (ms, n) = s.split_once('-').unwrap_or((s, "0"));
        let digits =
            |t: &str| !t.is_empty() && t.len() <= 20 && t.bytes().all(|b| b.is_ascii_digit());
        if !digits(ms) || !digits(n) {
            return Err(bad());
        }
        Ok(EventId {
            ms: ms.parse().map_err(|_| bad())?,
            n: n.parse().map_err(|_| bad())?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_read_back_and_order_as_redis_orders_them() {
        let a: EventId = "1765000000000-0".parse().expect("id");
        assert_eq!(a.to_string(), "1765000000000-0");
        assert_eq!("1765000000000".parse::<EventId>(), Ok(a));
        let b = EventId::next(Some(a), a.ms);
        assert_eq!(b, EventId { ms: a.ms, n: 1 });
        // A clock that stepped back never makes an id go back.
        assert_eq!(EventId::next(Some(b), a.ms - 5), EventId { ms: a.ms, n: 2 });
        assert_eq!(
            EventId::next(Some(b), a.ms + 1),
            EventId { ms: a.ms + 1, n: 0 }
        );
        assert!(a < b);
        for bad in [
            "",
            "-",
            "x-1",
            "1-",
            "1-2-3",
            "-1",
            "1 -2",
            "99999999999999999999999-0",
        ] {
            assert!(bad.parse::<EventId>().is_err(), "{bad:?}");
        }
    }
}
