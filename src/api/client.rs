//! A small client of the hub's HTTP API, for the commands that talk to a
//! running hub as any script would (`presence-hub directory export|import`,
//! `presence-hub events tail`, the demo's simulated ACD): bearer token,
//! JSON in and out, an optional `Idempotency-Key`, a refusal kept with its
//! status and body.

use serde_json::Value;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// No answer (the hub is not reachable, a timeout, a body not JSON).
    #[error("{0}")]
    Http(String),
    /// An answer outside 2xx.
    #[error("the hub refused {what}: HTTP {status}: {body}")]
    Refused {
        what: String,
        status: u16,
        body: String,
    },
}

pub struct Api {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl Api {
    pub fn new(base: &str, token: &str) -> Result<Self, ApiError> {
        Api::build(base, token, reqwest::Client::builder(), 30)
    }

    /// As [`Api::new`], for the node's own address: straight to it, never
    /// through a proxy named in the environment (`HTTP_PROXY`, …), and a
    /// request that takes over 5 s is given up.
    pub fn local(base: &str, token: &str) -> Result<Self, ApiError> {
        Api::build(base, token, reqwest::Client::builder().no_proxy(), 5)
    }

    fn build(
        base: &str,
        token: &str,
        builder: reqwest::ClientBuilder,
        timeout_s: u64,
    ) -> Result<Self, ApiError> {
        crate::tls::install_crypto_provider();
        let http = builder
            .timeout(std::time::Duration::from_secs(timeout_s))
            .build()
            .map_err(|e| ApiError::Http(format!("cannot build an HTTP client: {e}")))?;
        Ok(Api {
            http,
            base: base.trim_end_matches('/').to_string(),
            token: token.to_string(),
        })
    }

    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, ApiError> {
        self.call_once(method, path, body, None).await
    }

    /// As [`Api::call`], with an `Idempotency-Key` when `key` is given
    /// (docs/API.md, "Idempotency"): a repeat answers as the first did.
    pub async fn call_once(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
        key: Option<&str>,
    ) -> Result<Value, ApiError> {
        let what = format!("{method} {path}");
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token);
        if let Some(key) = key {
            request = request.header("idempotency-key", key);
        }
        if let Some(body) = body {
            request = request
                .header("content-type", "application/json")
                .body(body.to_string());
        }
        let response = request
            .send()
            .await
            .map_err(|e| ApiError::Http(format!("{what}: {e}")))?;
        let status = response.status().as_u16();
        let text = response
            .text()
            .await
            .map_err(|e| ApiError::Http(format!("{what}: {e}")))?;
        if !(200..300).contains(&status) {
            return Err(ApiError::Refused {
                what,
                status,
                body: text,
            });
        }
        serde_json::from_str(&text)
            .map_err(|e| ApiError::Http(format!("{what}: the answer is not JSON: {e}")))
    }
}

impl ApiError {
    /// The HTTP status of a refusal; `None` when there was no answer.
    pub fn status(&self) -> Option<u16> {
        match self {
            ApiError::Refused { status, .. } => Some(*status),
            ApiError::Http(_) => None,
        }
    }
}
