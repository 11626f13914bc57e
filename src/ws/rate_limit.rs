//! A connection's frame budget: a token bucket, with floods told apart from
//! bursts.
//!
//! Every frame a peer sends costs the hub a read and a parse, whatever it
//! carries, so both WebSockets count every frame, not only messages: pings,
//! pongs, binary frames and each fragment of a message (PROTOCOL.md §1,
//! docs/API.md "Over one WebSocket"). A frame over the budget is refused
//! (a request in it is answered `rate_limited`, nothing applied); a message
//! with any of its fragments refused is refused whole, even when its last
//! frame finds the budget back; more refusals than one second's budget
//! within one second is a flood, and the connection is closed with 4008.

use super::Message;
use std::time::Duration;
use tokio::time::Instant;

/// What a frame is to the budget.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Part {
    /// A ping or a pong.
    Control,
    /// A frame of a message still to be completed.
    Fragment,
    /// A whole message, or the last frame of a fragmented one.
    Message,
}

impl Part {
    /// What `message` is to the budget (a close is a control frame).
    pub fn of(message: &Message) -> Part {
        match message {
            Message::Text(_) | Message::Binary(_) => Part::Message,
            Message::Fragment => Part::Fragment,
            Message::Ping | Message::Pong | Message::Close(_) => Part::Control,
        }
    }
}

/// A token bucket: `rate` frames per second, bursts of one second's
/// worth. Refusals are counted per one-second window: more than `rate` of
/// them in a window is a flood (an allowed message in between does not
/// excuse it).
pub struct RateLimiter {
    /// Messages a second (a `u32` beside `strikes`: every connection's task
    /// carries the limiter).
    rate: u32,
    tokens: f64,
    at: Instant,
    window: Instant,
    /// Frames refused in the current window.
    strikes: u32,
    /// A fragment of the message being read was refused: the message is.
    spoiled: bool,
}

impl RateLimiter {
    pub fn new(rate: u32) -> Self {
        let rate = rate.max(1);
        let now = Instant::now();
        RateLimiter {
            rate,
            tokens: f64::from(rate),
            at: now,
            window: now,
            strikes: 0,
            spoiled: false,
        }
    }

    /// More refusals than one second's worth within the window: a flood.
    pub fn flooded(&self) -> bool {
        self.strikes > self.rate
    }

    /// Whether a frame may be handled: a token for it and, for the end of
    /// a message, none of its fragments refused. Every refusal for want of
    /// a token counts for [`RateLimiter::flooded`].
    pub fn admit(&mut self, now: Instant, part: Part) -> bool {
        let allowed = self.allow(now);
        match part {
            Part::Control => allowed,
            Part::Fragment => {
                self.spoiled |= !allowed;
                allowed
            }
            Part::Message => !std::mem::take(&mut self.spoiled) && allowed,
        }
    }

    fn allow(&mut self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.at = now;
        let rate = f64::from(self.rate);
        self.tokens = (self.tokens + elapsed * rate).min(rate);
        if now.saturating_duration_since(self.window) >= Duration::from_secs(1) {
            self.window = now;
            self.strikes = 0;
        }
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            self.strikes += 1;
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_of_one_seconds_worth_then_refusals_then_a_flood() {
        let mut limiter = RateLimiter::new(10);
        let t0 = limiter.at;
        assert!((0..10).all(|_| limiter.allow(t0)));
        for _ in 0..10 {
            assert!(!limiter.allow(t0));
            assert!(!limiter.flooded(), "refusals up to the rate are a burst");
        }
        assert!(!limiter.allow(t0));
        assert!(limiter.flooded());
    }

    #[test]
    fn a_message_with_a_refused_fragment_is_refused_whole() {
        let mut limiter = RateLimiter::new(10);
        let t0 = limiter.at;
        let fragments = (0..12)
            .filter(|_| limiter.admit(t0, Part::Fragment))
            .count();
        assert_eq!(fragments, 10);
        // Its last frame comes once the budget is back: refused all the same.
        let later = t0 + Duration::from_millis(500);
        assert!(!limiter.admit(later, Part::Message));
        // The next message starts afresh.
        assert!(limiter.admit(later, Part::Message));
        // A control frame between fragments spoils nothing.
        assert!(limiter.admit(later, Part::Fragment));
        assert!(limiter.admit(later, Part::Control));
        assert!(limiter.admit(later, Part::Message));
    }

    #[test]
    fn frames_come_back_at_the_rate_and_refusals_are_forgotten_a_second_on() {
        let mut limiter = RateLimiter::new(10);
        let t0 = limiter.at;
        let refused = (0..15).filter(|_| !limiter.allow(t0)).count();
        assert_eq!(refused, 5);
        // A tenth of a second gives one frame back, not two.
        let later = t0 + Duration::from_millis(100);
        assert!(limiter.allow(later));
        assert!(!limiter.allow(later));
        // A second on: the whole burst again, and a fresh count of refusals.
        let next = t0 + Duration::from_millis(1_100);
        assert!((0..10).all(|_| limiter.allow(next)));
        assert!((0..10).all(|_| !limiter.allow(next)));
        assert!(!limiter.flooded());
    }
}
