//! Wall-clock time as the protocol carries it (Unix milliseconds). Domain
//! code never reads the clock itself; sessions and timers pass `now_ms` in.

use std::time::{SystemTime, UNIX_EPOCH};

pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

pub fn unix_s() -> u64 {
    now_ms() / 1000
}
