//! The hub's HTTP API as the bridge uses it: each call with the service
//! key, retried while the failure may pass (connection errors, 5xx, 429
//! after its Retry-After) and given up on when the hub refused it (any
//! other 4xx: the same request would be refused again). A retried change
//! carries its Idempotency-Key, so a 504 `outcome_unknown` or a lost
//! answer can be repeated safely: the hub applies it at most once.

use super::bridge::Call;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::time::Duration;

/// How long and how often to retry.
#[derive(Debug, Clone)]
pub struct Retry {
    pub attempts: u32,
    pub first: Duration,
    pub max: Duration,
}

impl Default for Retry {
    fn default() -> Retry {
        Retry {
            attempts: 8,
            first: Duration::from_millis(250),
            max: Duration::from_secs(10),
        }
    }
}

/// How one call ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// 2xx: applied (or, for a repeated key, already applied).
    Done(u16, Value),
    /// A 4xx other than 429: refused; logged and skipped.
    Refused(u16, Value),
    /// Still failing after every attempt: logged and skipped.
    GaveUp(String),
}

pub struct Hub {
    client: reqwest::Client,
    base: String,
    key: String,
    pub retry: Retry,
}

/// The header's limit is 128 characters: a longer key (long agent ids) is
/// replaced by its SHA-256, still derived from the event alone.
pub fn idempotency_key(key: &str) -> String {
    if key.len() <= 128 {
        key.to_string()
    } else {
        let digest = Sha256::digest(key.as_bytes());
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        format!("ami:{hex}")
    }
}

impl Hub {
    pub fn new(base: &str, key: &str, retry: Retry) -> Result<Hub, String> {
        // reqwest is built without a crypto provider (for an https hub):
        // the hub's own choice, ring, installed unless already there.
        presence_hub::tls::install_crypto_provider();
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| format!("HTTP client: {e}"))?;
        Ok(Hub {
            client,
            base: base.trim_end_matches('/').to_string(),
            key: key.to_string(),
            retry,
        })
    }

    /// Sends one call, retrying transient failures.
    pub async fn send(&self, call: &Call) -> Outcome {
        let (method, path) = call.method_and_path();
        let body = call.body().to_string();
        let mut delay = self.retry.first;
        let mut last = String::new();
        for attempt in 1..=self.retry.attempts.max(1) {
            let mut req = match method {
                "POST" => self.client.post(format!("{}{path}", self.base)),
                _ => self.client.put(format!("{}{path}", self.base)),
            }
            .bearer_auth(&self.key)
            .header("Content-Type", "application/json")
            .body(body.clone());
            if let Some(key) = call.key() {
                req = req.header("Idempotency-Key", idempotency_key(key));
            }
            let mut wait = delay;
            match req.send().await {
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    let retry_after = resp
                        .headers()
                        .get("retry-after")
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.trim().parse::<u64>().ok());
                    let text = resp.text().await.unwrap_or_default();
                    let json = serde_json::from_str(&text).unwrap_or(Value::String(text));
                    match status {
                        200..=299 => return Outcome::Done(status, json),
                        429 => {
                            // The hub says when: wait that long (bounded).
                            if let Some(s) = retry_after {
                                wait = Duration::from_secs(s.min(60));
                            }
                            last = format!("429 {json}");
                        }
                        500..=599 => last = format!("{status} {json}"),
                        _ => return Outcome::Refused(status, json),
                    }
                }
                Err(e) => last = format!("connection: {e}"),
            }
            if attempt < self.retry.attempts {
                tracing::warn!(%path, attempt, error = %last, "retrying");
                tokio::time::sleep(wait).await;
                delay = (delay * 2).min(self.retry.max);
            }
        }
        Outcome::GaveUp(last)
    }
}
