//! SCIM errors (RFC 7644 §3.12): `{"schemas": [Error], "status": "400",
//! "scimType": "invalidValue", "detail": "…"}`, with `status` a string as
//! the RFC writes it. The hub's own errors ([`HubError`]) map onto them
//! with the same HTTP status the JSON API gives each code.

use crate::error::{ErrorCode, HubError};
use axum::http::StatusCode;
use serde_json::{json, Value};

pub const ERROR_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:Error";

/// One SCIM error.
#[derive(Debug, Clone, PartialEq)]
pub struct ScimError {
    pub status: StatusCode,
    /// RFC 7644 §3.12 table 9 (`invalidValue`, `invalidFilter`, …); absent
    /// where the RFC names none (401, 404, 429, 5xx).
    pub scim_type: Option<&'static str>,
    pub detail: String,
}

pub type ScimResult<T> = Result<T, ScimError>;

impl ScimError {
    pub fn new(
        status: StatusCode,
        scim_type: Option<&'static str>,
        detail: impl Into<String>,
    ) -> Self {
        ScimError {
            status,
            scim_type,
            detail: detail.into(),
        }
    }

    /// 400 `invalidValue`: a value the hub cannot take.
    pub fn invalid_value(detail: impl Into<String>) -> Self {
        ScimError::new(StatusCode::BAD_REQUEST, Some("invalidValue"), detail)
    }

    /// 400 `invalidSyntax`: a body that is not the request's shape.
    pub fn invalid_syntax(detail: impl Into<String>) -> Self {
        ScimError::new(StatusCode::BAD_REQUEST, Some("invalidSyntax"), detail)
    }

    /// 400 `invalidFilter`: a filter this server does not understand.
    pub fn invalid_filter(detail: impl Into<String>) -> Self {
        ScimError::new(StatusCode::BAD_REQUEST, Some("invalidFilter"), detail)
    }

    /// 400 `invalidPath`: a PATCH path this server does not understand.
    pub fn invalid_path(detail: impl Into<String>) -> Self {
        ScimError::new(StatusCode::BAD_REQUEST, Some("invalidPath"), detail)
    }

    /// 400 `mutability`: an attribute that cannot change (`userName`, `id`).
    pub fn mutability(detail: impl Into<String>) -> Self {
        ScimError::new(StatusCode::BAD_REQUEST, Some("mutability"), detail)
    }

    /// 409 `uniqueness`: the resource exists already.
    pub fn uniqueness(detail: impl Into<String>) -> Self {
        ScimError::new(StatusCode::CONFLICT, Some("uniqueness"), detail)
    }

    pub fn not_found(detail: impl Into<String>) -> Self {
        ScimError::new(StatusCode::NOT_FOUND, None, detail)
    }

    pub fn unauthorized(detail: impl Into<String>) -> Self {
        ScimError::new(StatusCode::UNAUTHORIZED, None, detail)
    }

    /// The error's body.
    pub fn body(&self) -> Value {
        let mut body = json!({
            "schemas": [ERROR_SCHEMA],
            "status": self.status.as_u16().to_string(),
            "detail": self.detail,
        });
        if let Some(t) = self.scim_type {
            body["scimType"] = json!(t);
        }
        body
    }
}

impl From<HubError> for ScimError {
    fn from(e: HubError) -> Self {
        let status = crate::api::status_of(e.code);
        let scim_type = match e.code {
            ErrorCode::BadRequest | ErrorCode::UnknownType => Some("invalidValue"),
            _ => None,
        };
        ScimError::new(status, scim_type, e.message)
    }
}
