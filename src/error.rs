//! Error codes of protocol v1 and the hub's one error type.
//!
//! Every refusal the hub sends is a [`HubError`]: a stable machine-readable
//! [`ErrorCode`] plus a human sentence. Domain functions, permission checks and
//! backplanes all return it, so a session only has to serialize it.

use serde::Serialize;
use std::fmt;

/// The `error.code` values of PROTOCOL.md §3.1.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    BadRequest,
    UnknownType,
    Unauthorized,
    Forbidden,
    NotFound,
    InvalidState,
    Disabled,
    AgentOffline,
    Timeout,
    RateLimited,
    TooLarge,
    Unavailable,
    OutcomeUnknown,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::BadRequest => "bad_request",
            ErrorCode::UnknownType => "unknown_type",
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::NotFound => "not_found",
            ErrorCode::InvalidState => "invalid_state",
            ErrorCode::Disabled => "disabled",
            ErrorCode::AgentOffline => "agent_offline",
            ErrorCode::Timeout => "timeout",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::TooLarge => "too_large",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::OutcomeUnknown => "outcome_unknown",
        }
    }
}

/// A refusal: what went wrong (`code`) and why, in words (`message`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, thiserror::Error)]
pub struct HubError {
    pub code: ErrorCode,
    pub message: String,
}

impl fmt::Display for HubError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code.as_str(), self.message)
    }
}

macro_rules! constructors {
    ($($name:ident => $code:ident),* $(,)?) => {
        impl HubError {
            $(
                pub fn $name(message: impl Into<String>) -> Self {
                    HubError { code: ErrorCode::$code, message: message.into() }
                }
            )*
        }
    };
}

constructors! {
    bad_request => BadRequest,
    unknown_type => UnknownType,
    unauthorized => Unauthorized,
    forbidden => Forbidden,
    not_found => NotFound,
    invalid_state => InvalidState,
    disabled => Disabled,
    agent_offline => AgentOffline,
    timeout => Timeout,
    rate_limited => RateLimited,
    too_large => TooLarge,
    unavailable => Unavailable,
    outcome_unknown => OutcomeUnknown,
}

/// Shorthand used across the crate.
pub type HubResult<T> = Result<T, HubError>;
