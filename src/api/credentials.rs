//! Service credentials of the integration API (docs/API.md,
//! "Integrations"): API keys an admin creates and revokes per tenant, each
//! with scopes, that an ACD or a PBX presents as `Authorization: Bearer
//! <key>` to act on agents.
//!
//! - A key is `phk_<tenant>.<id>.<secret>`: the tenant and the credential's
//!   id say where to look, the secret (32 random bytes, hex) is what proves
//!   it. The key is shown once, in the answer to its creation; the store
//!   keeps its SHA-256 only, compared in constant time
//!   ([`crate::auth::secret`], shared with SCIM).
//! - Where they are stored, and why there: [`crate::backplane::credential`].
//!   Every request reads its credential from the store, so a revocation
//!   holds on every node from the next request.
//! - Each credential is rate-limited per node by a token bucket
//!   (`--api-rate-per-credential` a second, `--api-burst-per-credential`
//!   at once; 0 turns the limit off): over it, 429 `rate_limited` with
//!   `Retry-After`. Per node, not cluster-wide: a limit shared by the
//!   nodes would cost a store write per request; behind a load balancer
//!   that spreads requests the cluster-wide ceiling is the node count
//!   times the rate.
//! - The key is verified before the bucket is touched: a caller who only
//!   knows a credential's id cannot spend that credential's budget (at
//!   the cost of one store read for a request over the rate).
//! - Refused keys are counted in
//!   `presence_hub_api_credentials_refused_total{reason}` (`malformed`,
//!   `unknown`, `scope`, `rate`).

use super::{body_json, Admin, ApiError, InFlight};
use crate::auth::secret;
use crate::backplane::credential::{Credential, Scope};
use crate::backplane::IdempotencyKey;
use crate::domain::Actor;
use crate::error::{HubError, HubResult};
use crate::hub::tenant::Tenant;
use crate::hub::{Hub, TenantLease};
use axum::http::{header, HeaderMap, StatusCode};
use parking_lot::Mutex;
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What every service key starts with (so a log scanner can find leaked
/// keys, and a user's JWT is never mistaken for one).
pub const KEY_PREFIX: &str = "phk_";
/// Longest credential id, in characters.
pub const MAX_ID_LEN: usize = 64;

/// Why a presented service key was refused (the metric's `reason`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refused {
    /// Not shaped like a key.
    Malformed,
    /// No such credential (never created, or revoked), or the wrong secret.
    Unknown,
    /// The credential lacks the route's scope.
    Scope,
    /// Over its rate.
    Rate,
}

impl Refused {
    fn as_str(self) -> &'static str {
        match self {
            Refused::Malformed => "malformed",
            Refused::Unknown => "unknown",
            Refused::Scope => "scope",
            Refused::Rate => "rate",
        }
    }

    fn count(self) {
        crate::metrics::get(); // the recorder, installed on first use
        metrics::counter!("presence_hub_api_credentials_refused_total", "reason" => self.as_str())
            .increment(1);
    }
}

/// A key split into its parts (not yet verified).
#[derive(Debug, PartialEq, Eq)]
pub struct KeyParts<'a> {
    pub tenant: &'a str,
    pub id: &'a str,
}

/// The tenant and id a key names; `None` when it is not shaped like one.
pub fn parse_key(key: &str) -> Option<KeyParts<'_>> {
    let rest = key.strip_prefix(KEY_PREFIX)?;
    let mut parts = rest.rsplitn(3, '.');
    let secret = parts.next()?;
    let id = parts.next()?;
    let tenant = parts.next()?;
    if tenant.is_empty() || !valid_id(id) || secret.len() != 64 {
        return None;
    }
    Some(KeyParts { tenant, id })
}

/// A credential id: 1 to [`MAX_ID_LEN`] of `A-Z a-z 0-9 _ -` (it appears
/// in keys, paths and the history).
pub fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_ID_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Token buckets of the credentials that made requests on this node.
#[derive(Default)]
pub struct RateLimits {
    buckets: Mutex<HashMap<(String, String), Bucket>>,
}

struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Buckets idle this long are full again: forgetting them changes nothing.
const IDLE: Duration = Duration::from_secs(60);
/// Above this many buckets, full ones are forgotten.
const PRUNE_ABOVE: usize = 10_000;

impl RateLimits {
    /// Takes one request from the credential's bucket; `Err(seconds)` to
    /// wait when it is empty.
    pub fn take(&self, tenant: &str, id: &str, rate: u32, burst: u32) -> Result<(), u64> {
        if rate == 0 {
            return Ok(());
        }
        let rate = f64::from(rate);
        let burst = f64::from(burst.max(1));
        let now = Instant::now();
        let mut buckets = self.buckets.lock();
        if buckets.len() > PRUNE_ABOVE {
            buckets.retain(|_, b| now.duration_since(b.at) < IDLE);
        }
        let bucket = buckets
            .entry((tenant.to_string(), id.to_string()))
            .or_insert(Bucket {
                tokens: burst,
                at: now,
            });
        let elapsed = now.duration_since(bucket.at).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * rate).min(burst);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(((1.0 - bucket.tokens) / rate).ceil().max(1.0) as u64)
        }
    }
}

/// A verified service credential, for one request.
pub(super) struct Service {
    pub tenant: Arc<Tenant>,
    /// `{"id": <credential id>, "role": "integration"}`.
    pub actor: Actor,
    /// The request's `Idempotency-Key`, scoped to the credential.
    pub once: Option<IdempotencyKey>,
    _lease: TenantLease,
    _permit: tokio::sync::OwnedSemaphorePermit,
}

/// The request's service key, checked against the store (on every
/// request: a revocation holds at once): its parts and the credential.
/// Any scope; the caller checks the one it needs.
pub(super) async fn verified_key<'h>(
    hub: &Arc<Hub>,
    headers: &'h HeaderMap,
) -> Result<(KeyParts<'h>, Credential), ApiError> {
    let key = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .ok_or_else(|| HubError::unauthorized("expected Authorization: Bearer <service key>"))?;
    let refuse = |why: Refused, e: HubError| {
        why.count();
        ApiError::from(e)
    };
    let Some(parts) = parse_key(key) else {
        return Err(refuse(
            Refused::Malformed,
            HubError::unauthorized(
                "the integration API takes a service key (phk_<tenant>.<id>.<secret>), not a user's token",
            ),
        ));
    };
    let unknown = || {
        refuse(
            Refused::Unknown,
            HubError::unauthorized("the service key is unknown or revoked"),
        )
    };
    let stored = hub
        .backplane
        .credential(parts.tenant, parts.id)
        .await
        .map_err(HubError::from)?
        .ok_or_else(unknown)?;
    let verified = secret::from_hex(&stored.hash).is_some_and(|h| secret::matches(&h, key));
    if !verified {
        return Err(unknown());
    }
    Ok((parts, stored))
}

/// Verifies the request's service key and that it holds `scope`.
pub(super) async fn service(
    hub: &Arc<Hub>,
    headers: &HeaderMap,
    limit: &InFlight,
    rates: &RateLimits,
    scope: Scope,
) -> Result<Service, ApiError> {
    let permit = super::in_flight(hub, limit)?;
    let (parts, stored) = verified_key(hub, headers).await?;
    if !stored.scopes.contains(&scope) {
        Refused::Scope.count();
        return Err(ApiError::from(HubError::forbidden(format!(
            "the service credential {:?} lacks the scope {}",
            stored.id,
            scope.as_str()
        ))));
    }
    let config = &hub.config;
    if let Err(seconds) = rates.take(
        parts.tenant,
        parts.id,
        config.api_rate_per_credential,
        config.api_burst_per_credential,
    ) {
        Refused::Rate.count();
        return Err(ApiError {
            error: HubError::rate_limited(format!(
                "the service credential {:?} is over {} requests a second on this node \
                 (--api-rate-per-credential); retry in {seconds} s",
                stored.id, config.api_rate_per_credential
            )),
            retry_after_s: Some(seconds),
        });
    }
    let (tenant, lease) = hub.open_tenant(parts.tenant).await?;
    let once = super::idempotency(headers, &format!("integration:{}", stored.id))?;
    Ok(Service {
        tenant,
        actor: Actor::integration(stored.id),
        once,
        _lease: lease,
        _permit: permit,
    })
}

/// A creation's body.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateBody {
    id: String,
    scopes: Vec<Scope>,
}

/// A credential as listed: never its hash.
fn listed(c: &Credential) -> Value {
    json!({
        "id": c.id,
        "scopes": c.scopes,
        "created_ms": c.created_ms,
        "created_by": c.created_by,
    })
}

/// `POST /api/v1/credentials`: 201 with the key, shown this once.
pub(super) async fn create(
    hub: &Arc<Hub>,
    admin: &Admin,
    body: axum::body::Body,
) -> HubResult<(StatusCode, Value)> {
    let body: CreateBody = serde_json::from_value(body_json(hub, body).await?)
        .map_err(|e| HubError::bad_request(format!("credential: {e}")))?;
    if !valid_id(&body.id) {
        return Err(HubError::bad_request(format!(
            "credential.id must be 1 to {MAX_ID_LEN} of A-Z a-z 0-9 _ -"
        )));
    }
    let mut scopes = body.scopes;
    scopes.sort();
    scopes.dedup();
    if scopes.is_empty() {
        return Err(HubError::bad_request(format!(
            "credential.scopes must name at least one of {}",
            Scope::ALL.map(Scope::as_str).join(", ")
        )));
    }
    let tenant = admin.tenant.id();
    let held = hub.backplane.credentials(tenant).await?.len();
    if held >= hub.config.api_max_credentials {
        return Err(HubError::invalid_state(format!(
            "tenant {tenant} holds {held} service credentials already (--api-max-credentials)"
        )));
    }
    let key = format!(
        "{KEY_PREFIX}{tenant}.{}.{}",
        body.id,
        secret::random_hex(32)
    );
    let credential = Credential {
        id: body.id,
        scopes,
        hash: secret::to_hex(&secret::hash(&key)),
        created_ms: crate::clock::now_ms(),
        created_by: admin.actor.id.clone(),
    };
    if !hub.backplane.create_credential(tenant, &credential).await? {
        return Err(HubError::invalid_state(format!(
            "a service credential {:?} exists already: revoke it first",
            credential.id
        )));
    }
    tracing::info!(tenant, credential = %credential.id, by = %admin.actor.id, "service credential created");
    let mut answer = listed(&credential);
    answer["key"] = json!(key);
    Ok((StatusCode::CREATED, answer))
}

/// `GET /api/v1/credentials`.
pub(super) async fn list(hub: &Arc<Hub>, admin: &Admin) -> HubResult<(StatusCode, Value)> {
    let all = hub.backplane.credentials(admin.tenant.id()).await?;
    Ok((
        StatusCode::OK,
        json!({"credentials": all.iter().map(listed).collect::<Vec<_>>()}),
    ))
}

/// `DELETE /api/v1/credentials/{id}`.
pub(super) async fn revoke(
    hub: &Arc<Hub>,
    admin: &Admin,
    id: &str,
) -> HubResult<(StatusCode, Value)> {
    let tenant = admin.tenant.id();
    if !hub.backplane.revoke_credential(tenant, id).await? {
        return Err(HubError::not_found(format!("no service credential {id:?}")));
    }
    tracing::info!(tenant, credential = %id, by = %admin.actor.id, "service credential revoked");
    Ok((StatusCode::OK, json!({"revoked": id})))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_parse_only_when_shaped_like_one() {
        let secret = "a".repeat(64);
        let key = format!("phk_acme.acd-1.{secret}");
        assert_eq!(
            parse_key(&key),
            Some(KeyParts {
                tenant: "acme",
                id: "acd-1"
            })
        );
        // A tenant with dots keeps them.
        let key = format!("phk_a.b.acd.{secret}");
        assert_eq!(parse_key(&key).map(|p| p.tenant), Some("a.b"));
        for bad in [
            "eyJhbGciOi".to_string(),
            format!("phk_.acd-1.{secret}"),
            format!("phk_acme..{secret}"),
            "phk_acme.acd-1.short".to_string(),
            format!("phk_acme.a d.{secret}"),
        ] {
            assert_eq!(parse_key(&bad), None, "{bad}");
        }
    }

    #[test]
    fn a_bucket_allows_its_burst_then_asks_to_wait() {
        let limits = RateLimits::default();
        for _ in 0..3 {
            assert_eq!(limits.take("t", "c", 1, 3), Ok(()));
        }
        assert_eq!(limits.take("t", "c", 1, 3), Err(1));
        // Another credential has its own bucket; rate 0 is no limit.
        assert_eq!(limits.take("t", "d", 1, 3), Ok(()));
        assert_eq!(limits.take("t", "c", 0, 3), Ok(()));
    }
}
