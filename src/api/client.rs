//! A small client of the hub's HTTP API, for the commands that talk to a
//! running hub as any script would (`presence-hub directory export|import`,
//! `presence-hub events tail`): bearer token, JSON in and out, a refusal
//! kept with its status and body.

use serde_json::Value;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    Http(String),
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
        crate::tls::install_crypto_provider();
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(30))
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
        let what = format!("{method} {path}");
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token);
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
