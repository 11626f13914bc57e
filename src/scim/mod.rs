//! Provisioning from identity providers over SCIM 2.0 (RFC 7643, RFC 7644)
//! at `/scim/v2`, so Okta or Microsoft Entra ID create, update, deactivate
//! and delete agents and put them in channels (docs/SCIM.md).
//!
//! Why a room of its own: an identity provider is neither a user nor an
//! admin with a token from the hub's sign-in; it holds a static secret per
//! tenant and speaks SCIM's resources, errors and PATCH dialects. This
//! module translates that, and only that: every change it makes is a
//! [`DirectoryChange`](crate::directory::change::DirectoryChange) through
//! [`Hub::change_directory`], the one write path of the directory, with the
//! actor `{"id": "scim", "role": "admin"}`. There is no second store.
//!
//! - Auth ([`Tokens`]): `--scim-tokens FILE`, a JSON object `{"<tenant>":
//!   "<sha256 hex of the token>"}`. The bearer token picks the tenant; it
//!   is hashed and compared with every tenant's hash in constant time.
//!   Without the flag every `/scim/v2` path answers 404; a token that
//!   matches no tenant gets 401.
//! - Users ([`users`]): `userName` is the hub's user id (and the SCIM
//!   `id`); `active: false` removes the user from the directory.
//! - Groups ([`groups`]): a group is a channel (`queue:sales`), its members
//!   the agents assigned to it.
//! - Limits as the JSON API's: `--api-max-body-bytes`, requests in flight
//!   (`--api-max-in-flight`, counted apart from the API's), at most
//!   [`MAX_PAGE`] resources a page. Counted in
//!   `presence_hub_scim_requests_total{route, status}`.

pub mod error;
pub mod filter;
pub mod groups;
pub mod patch;
pub mod users;

use crate::auth::secret;
use crate::domain::{Actor, Role};
use crate::hub::tenant::Tenant;
use crate::hub::{Hub, TenantLease};
use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use axum::Router;
use error::{ScimError, ScimResult};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::Semaphore;

/// The media type of every answer (RFC 7644 §3.1).
pub const CONTENT_TYPE: &str = "application/scim+json";
/// Most resources one page lists (`count` above it is lowered to it).
pub const MAX_PAGE: usize = 100;
/// Where the routes live.
pub const BASE: &str = "/scim/v2";
pub const LIST_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";

/// The SCIM routes: the entry point, merged next to the JSON API's in
/// [`crate::server`] (CORS and the security headers apply as to every API).
pub fn routes(hub: &Hub) -> Router<Arc<Hub>> {
    let tokens = Arc::new(Tokens::configured(hub.config.scim_tokens.as_deref()));
    let limit = Arc::new(Semaphore::new(hub.config.api_max_in_flight.max(1)));
    Router::new()
        .route("/scim/v2/Users", get(list_users).post(create_user))
        .route(
            "/scim/v2/Users/{id}",
            get(get_user)
                .put(replace_user)
                .patch(patch_user)
                .delete(delete_user),
        )
        .route("/scim/v2/Groups", get(list_groups).post(create_group))
        .route(
            "/scim/v2/Groups/{id}",
            get(get_group)
                .put(replace_group)
                .patch(patch_group)
                .delete(delete_group),
        )
        .route(
            "/scim/v2/ServiceProviderConfig",
            get(service_provider_config),
        )
        .route("/scim/v2/ResourceTypes", get(resource_types))
        .route("/scim/v2/Schemas", get(schemas))
        .route("/scim/v2", any(no_such_resource))
        .route("/scim/v2/{*rest}", any(no_such_resource))
        .layer(axum::Extension(Scim { tokens, limit }))
}

/// What every request of the routes shares.
#[derive(Clone)]
struct Scim {
    tokens: Arc<Tokens>,
    limit: Arc<Semaphore>,
}

/// The tenants' SCIM tokens, as hashes (`--scim-tokens`).
#[derive(Debug)]
pub enum Tokens {
    /// No `--scim-tokens`: SCIM is off, every path answers 404.
    Off,
    /// Tenant and SHA-256 of its token.
    On(Vec<(String, [u8; 32])>),
    /// The file could not be read: every request answers 503 with why
    /// (logged at start too).
    Broken(String),
}

impl Tokens {
    /// Reads `--scim-tokens`; a file that cannot be used is logged and
    /// turns every request into a 503, never into open access.
    pub fn configured(path: Option<&std::path::Path>) -> Tokens {
        let Some(path) = path else {
            return Tokens::Off;
        };
        let read = std::fs::read_to_string(path)
            .map_err(|e| format!("--scim-tokens {}: {e}", path.display()))
            .and_then(|text| {
                Tokens::parse(&text).map_err(|e| format!("--scim-tokens {}: {e}", path.display()))
            });
        match read {
            Ok(tokens) => tokens,
            Err(why) => {
                tracing::error!(error = %why, "SCIM is unavailable until the tokens file is fixed");
                Tokens::Broken(why)
            }
        }
    }

    /// `{"<tenant>": "<64 hex digits>"}`.
    pub fn parse(text: &str) -> Result<Tokens, String> {
        let map: HashMap<String, String> = serde_json::from_str(text)
            .map_err(|e| format!("expected {{\"<tenant>\": \"<sha256 hex>\"}}: {e}"))?;
        let mut list: Vec<(String, [u8; 32])> = Vec::with_capacity(map.len());
        for (tenant, hex) in map {
            let hash = secret::from_hex(hex.trim()).ok_or_else(|| {
                format!("tenant {tenant:?}: not 64 hex digits (sha256 of the token)")
            })?;
            if list.iter().any(|(_, h)| *h == hash) {
                return Err(format!(
                    "tenant {tenant:?}: the same token as another tenant"
                ));
            }
            list.push((tenant, hash));
        }
        list.sort();
        Ok(Tokens::On(list))
    }

    /// The tenant whose token `given` is. Every tenant's hash is compared,
    /// in constant time, whichever matches.
    fn tenant_of(&self, given: &str) -> Option<&str> {
        let Tokens::On(list) = self else {
            return None;
        };
        let given = secret::hash(given);
        let mut found = None;
        for (tenant, hash) in list {
            if secret::same(hash, &given) {
                found = Some(tenant.as_str());
            }
        }
        found
    }
}

/// One authenticated request: the tenant its token names.
pub struct Caller {
    pub tenant: Arc<Tenant>,
    pub actor: Actor,
    _lease: TenantLease,
    _permit: tokio::sync::OwnedSemaphorePermit,
}

async fn caller(hub: &Arc<Hub>, headers: &HeaderMap, scim: &Scim) -> ScimResult<Caller> {
    match &*scim.tokens {
        Tokens::Off => {
            return Err(ScimError::not_found(
                "SCIM provisioning is off on this hub (--scim-tokens)",
            ))
        }
        Tokens::Broken(_) => {
            return Err(ScimError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                None,
                "the hub's SCIM tokens file cannot be read (see its log)",
            ))
        }
        Tokens::On(_) => {}
    }
    let permit = scim.limit.clone().try_acquire_owned().map_err(|_| {
        ScimError::new(
            StatusCode::TOO_MANY_REQUESTS,
            None,
            format!(
                "more than {} SCIM requests in flight on this node (--api-max-in-flight); retry later",
                hub.config.api_max_in_flight
            ),
        )
    })?;
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
        .filter(|t| !t.is_empty())
        .ok_or_else(|| ScimError::unauthorized("expected Authorization: Bearer <SCIM token>"))?;
    let tenant = scim
        .tokens
        .tenant_of(token)
        .ok_or_else(|| ScimError::unauthorized("the SCIM token is not one of this hub's"))?
        .to_string();
    let (tenant, lease) = hub.open_tenant(&tenant).await.map_err(|e| {
        tracing::warn!(tenant = %tenant, error = %e, "a SCIM token names a tenant the hub cannot open");
        ScimError::from(e)
    })?;
    // An IdP's requests follow one another, perhaps through other nodes:
    // read what the store has, not what this replica had.
    hub.catch_up_with_store(&tenant).await;
    Ok(Caller {
        tenant,
        actor: Actor::new("scim", Role::Admin),
        _lease: lease,
        _permit: permit,
    })
}

/// An answer: status and, but for 204, a SCIM JSON body.
pub type Answer = (StatusCode, Option<Value>);

fn count(route: &'static str, status: StatusCode) {
    // The recorder is installed on first use: before the first count, not
    // after (a count made before it would be lost).
    let _ = crate::metrics::get();
    metrics::counter!("presence_hub_scim_requests_total", "route" => route, "status" => status.as_str().to_string())
        .increment(1);
}

fn respond(route: &'static str, result: ScimResult<Answer>) -> Response {
    let (status, body) = match result {
        Ok(answer) => answer,
        Err(e) => (e.status, Some(e.body())),
    };
    count(route, status);
    let mut response = match body {
        Some(body) => (
            status,
            [(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE))],
            body.to_string(),
        )
            .into_response(),
        None => status.into_response(),
    };
    if status == StatusCode::UNAUTHORIZED {
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    response
}

/// A request body: one JSON object of at most `--api-max-body-bytes`.
async fn body_json(hub: &Hub, body: Body) -> ScimResult<Value> {
    // The API's reader (one bound, one message); its refusals in SCIM's
    // terms: too large, or not a JSON object (`invalidSyntax`).
    crate::api::body_json(hub, body)
        .await
        .map_err(|e| match e.code {
            crate::error::ErrorCode::TooLarge => {
                ScimError::new(StatusCode::PAYLOAD_TOO_LARGE, None, e.message)
            }
            _ => ScimError::invalid_syntax(e.message),
        })
}

/// The query parameters a list or a read takes.
#[derive(Debug, Default)]
pub struct Query {
    pub filter: Option<filter::Eq>,
    /// 1-based (RFC 7644 §3.4.2.4); below 1 is 1.
    pub start_index: usize,
    /// At most [`MAX_PAGE`].
    pub count: usize,
    /// `excludedAttributes=members` (Entra asks for groups without them).
    pub without_members: bool,
}

impl Query {
    fn parse(raw: Option<&str>) -> ScimResult<Query> {
        let mut q = Query {
            start_index: 1,
            count: MAX_PAGE,
            ..Query::default()
        };
        for pair in raw.unwrap_or_default().split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            let value = percent_decode(value).ok_or_else(|| {
                ScimError::invalid_value(format!("query parameter {key}: not UTF-8"))
            })?;
            let number = |what: &str| {
                value
                    .trim()
                    .parse::<i64>()
                    .map_err(|_| ScimError::invalid_value(format!("{what} must be an integer")))
            };
            match key {
                "filter" => q.filter = Some(filter::parse(&value)?),
                "startIndex" => {
                    q.start_index = usize::try_from(number("startIndex")?.max(1)).unwrap_or(1)
                }
                "count" => {
                    q.count = usize::try_from(number("count")?.max(0))
                        .unwrap_or(0)
                        .min(MAX_PAGE)
                }
                "excludedAttributes" => {
                    q.without_members = value
                        .split(',')
                        .any(|a| a.trim().eq_ignore_ascii_case("members"))
                }
                _ => {} // attributes, sortBy, …: answered in full, unsorted (ServiceProviderConfig says so).
            }
        }
        Ok(q)
    }

    /// One page of `all` (already in a stable order) as a ListResponse.
    pub fn page(&self, all: Vec<Value>) -> Value {
        let total = all.len();
        let page: Vec<Value> = all
            .into_iter()
            .skip(self.start_index - 1)
            .take(self.count)
            .collect();
        json!({
            "schemas": [LIST_SCHEMA],
            "totalResults": total,
            "startIndex": self.start_index,
            "itemsPerPage": page.len(),
            "Resources": page,
        })
    }
}

/// `application/x-www-form-urlencoded` decoding of one value (`+` is a
/// space, as Entra writes `userName+eq+"…"`).
fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = bytes.get(i + 1..i + 3)?;
                let hex = std::str::from_utf8(hex).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

/// `id` as it goes in a URL path (RFC 3986 unreserved kept, the rest
/// percent-encoded), for `meta.location`.
pub fn path_segment(id: &str) -> String {
    let mut out = String::with_capacity(id.len());
    for b in id.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b':' | b'@') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

type Hubs = State<Arc<Hub>>;
type Shared = axum::Extension<Scim>;

async fn list_users(
    State(hub): Hubs,
    scim: Shared,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    respond(
        "users",
        async {
            let c = caller(&hub, &headers, &scim).await?;
            let q = Query::parse(raw.as_deref())?;
            Ok((StatusCode::OK, Some(users::list(&c, &q)?)))
        }
        .await,
    )
}

async fn create_user(State(hub): Hubs, scim: Shared, headers: HeaderMap, body: Body) -> Response {
    respond(
        "users",
        async {
            let c = caller(&hub, &headers, &scim).await?;
            let body = body_json(&hub, body).await?;
            users::create(&hub, &c, &body).await
        }
        .await,
    )
}

async fn get_user(
    State(hub): Hubs,
    scim: Shared,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    respond(
        "user",
        async {
            let c = caller(&hub, &headers, &scim).await?;
            Ok((StatusCode::OK, Some(users::get(&c, &id)?)))
        }
        .await,
    )
}

async fn replace_user(
    State(hub): Hubs,
    scim: Shared,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Body,
) -> Response {
    respond(
        "user",
        async {
            let c = caller(&hub, &headers, &scim).await?;
            let body = body_json(&hub, body).await?;
            users::replace(&hub, &c, &id, &body).await
        }
        .await,
    )
}

async fn patch_user(
    State(hub): Hubs,
    scim: Shared,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Body,
) -> Response {
    respond(
        "user",
        async {
            let c = caller(&hub, &headers, &scim).await?;
            let body = body_json(&hub, body).await?;
            users::patch(&hub, &c, &id, &body).await
        }
        .await,
    )
}

async fn delete_user(
    State(hub): Hubs,
    scim: Shared,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    respond(
        "user",
        async {
            let c = caller(&hub, &headers, &scim).await?;
            users::delete(&hub, &c, &id).await
        }
        .await,
    )
}

async fn list_groups(
    State(hub): Hubs,
    scim: Shared,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    respond(
        "groups",
        async {
            let c = caller(&hub, &headers, &scim).await?;
            let q = Query::parse(raw.as_deref())?;
            Ok((StatusCode::OK, Some(groups::list(&c, &q)?)))
        }
        .await,
    )
}

async fn create_group(State(hub): Hubs, scim: Shared, headers: HeaderMap, body: Body) -> Response {
    respond(
        "groups",
        async {
            let c = caller(&hub, &headers, &scim).await?;
            let body = body_json(&hub, body).await?;
            groups::create(&hub, &c, &body).await
        }
        .await,
    )
}

async fn get_group(
    State(hub): Hubs,
    scim: Shared,
    headers: HeaderMap,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Response {
    respond(
        "group",
        async {
            let c = caller(&hub, &headers, &scim).await?;
            let q = Query::parse(raw.as_deref())?;
            Ok((StatusCode::OK, Some(groups::get(&c, &id, &q)?)))
        }
        .await,
    )
}

async fn replace_group(
    State(hub): Hubs,
    scim: Shared,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Body,
) -> Response {
    respond(
        "group",
        async {
            let c = caller(&hub, &headers, &scim).await?;
            let body = body_json(&hub, body).await?;
            groups::replace(&hub, &c, &id, &body).await
        }
        .await,
    )
}

async fn patch_group(
    State(hub): Hubs,
    scim: Shared,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Body,
) -> Response {
    respond(
        "group",
        async {
            let c = caller(&hub, &headers, &scim).await?;
            let body = body_json(&hub, body).await?;
            groups::patch(&hub, &c, &id, &body).await
        }
        .await,
    )
}

async fn delete_group(
    State(hub): Hubs,
    scim: Shared,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    respond(
        "group",
        async {
            let c = caller(&hub, &headers, &scim).await?;
            groups::delete(&hub, &c, &id).await
        }
        .await,
    )
}

async fn no_such_resource(State(hub): Hubs, scim: Shared, headers: HeaderMap) -> Response {
    respond(
        "other",
        async {
            caller(&hub, &headers, &scim).await?;
            Err::<Answer, _>(ScimError::not_found("no such SCIM resource"))
        }
        .await,
    )
}

async fn service_provider_config(State(hub): Hubs, scim: Shared, headers: HeaderMap) -> Response {
    respond(
        "config",
        async {
            caller(&hub, &headers, &scim).await?;
            Ok((
                StatusCode::OK,
                Some(json!({
                    "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"],
                    "documentationUri": "https://github.com/presence-hub/presence-hub/blob/main/docs/SCIM.md",
                    "patch": {"supported": true},
                    "bulk": {"supported": false, "maxOperations": 0, "maxPayloadSize": 0},
                    "filter": {"supported": true, "maxResults": MAX_PAGE},
                    "changePassword": {"supported": false},
                    "sort": {"supported": false},
                    "etag": {"supported": false},
                    "authenticationSchemes": [{
                        "type": "oauthbearertoken",
                        "name": "Bearer token",
                        "description": "A static per-tenant SCIM token (--scim-tokens)",
                        "primary": true,
                    }],
                    "meta": {"resourceType": "ServiceProviderConfig", "location": "/scim/v2/ServiceProviderConfig"},
                })),
            ))
        }
        .await,
    )
}

async fn resource_types(State(hub): Hubs, scim: Shared, headers: HeaderMap) -> Response {
    respond(
        "config",
        async {
            caller(&hub, &headers, &scim).await?;
            let types = vec![
                json!({
                    "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ResourceType"],
                    "id": "User", "name": "User", "endpoint": "/Users",
                    "description": "A user of the tenant: userName is the hub's user id",
                    "schema": users::USER_SCHEMA,
                    "meta": {"resourceType": "ResourceType", "location": "/scim/v2/ResourceTypes/User"},
                }),
                json!({
                    "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ResourceType"],
                    "id": "Group", "name": "Group", "endpoint": "/Groups",
                    "description": "A channel of the tenant (queue:sales); members are the agents assigned to it",
                    "schema": groups::GROUP_SCHEMA,
                    "meta": {"resourceType": "ResourceType", "location": "/scim/v2/ResourceTypes/Group"},
                }),
            ];
            Ok((StatusCode::OK, Some(Query { start_index: 1, count: MAX_PAGE, ..Query::default() }.page(types))))
        }
        .await,
    )
}

async fn schemas(State(hub): Hubs, scim: Shared, headers: HeaderMap) -> Response {
    respond(
        "config",
        async {
            caller(&hub, &headers, &scim).await?;
            let attr = |name: &str, kind: &str, mutability: &str, required: bool| {
                json!({"name": name, "type": kind, "multiValued": false, "required": required,
                       "caseExact": false, "mutability": mutability, "returned": "default",
                       "uniqueness": if name == "userName" { "server" } else { "none" }})
            };
            let list = vec![
                json!({
                    "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Schema"],
                    "id": users::USER_SCHEMA, "name": "User",
                    "description": "What the hub keeps of a user; other attributes are accepted and not kept",
                    "attributes": [
                        attr("userName", "string", "immutable", true),
                        attr("displayName", "string", "readWrite", false),
                        json!({"name": "name", "type": "complex", "multiValued": false, "required": false,
                               "mutability": "readWrite", "returned": "default",
                               "subAttributes": [
                                   attr("formatted", "string", "readWrite", false),
                                   attr("givenName", "string", "readWrite", false),
                                   attr("familyName", "string", "readWrite", false)]}),
                        attr("active", "boolean", "readWrite", false),
                        json!({"name": "groups", "type": "complex", "multiValued": true, "required": false,
                               "mutability": "readOnly", "returned": "default"}),
                    ],
                    "meta": {"resourceType": "Schema", "location": format!("/scim/v2/Schemas/{}", users::USER_SCHEMA)},
                }),
                json!({
                    "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Schema"],
                    "id": groups::GROUP_SCHEMA, "name": "Group",
                    "description": "A channel; its members are the agents assigned to it",
                    "attributes": [
                        attr("displayName", "string", "readWrite", true),
                        json!({"name": "members", "type": "complex", "multiValued": true, "required": false,
                               "mutability": "readWrite", "returned": "default"}),
                    ],
                    "meta": {"resourceType": "Schema", "location": format!("/scim/v2/Schemas/{}", groups::GROUP_SCHEMA)},
                }),
            ];
            Ok((StatusCode::OK, Some(Query { start_index: 1, count: MAX_PAGE, ..Query::default() }.page(list))))
        }
        .await,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(token: &str) -> String {
        secret::to_hex(&secret::hash(token))
    }

    #[test]
    fn a_token_picks_its_tenant_only() {
        let file = format!(
            r#"{{"acme": "{}", "globex": "{}"}}"#,
            hex("a-secret"),
            hex("g-secret")
        );
        let tokens = Tokens::parse(&file).expect("valid");
        assert_eq!(tokens.tenant_of("a-secret"), Some("acme"));
        assert_eq!(tokens.tenant_of("g-secret"), Some("globex"));
        assert_eq!(tokens.tenant_of("a-secre"), None);
        assert_eq!(Tokens::Off.tenant_of("a-secret"), None);
        for bad in [
            r#"{"acme": "abc"}"#.to_string(),
            r#"["x"]"#.to_string(),
            format!(r#"{{"a": "{0}", "b": "{0}"}}"#, hex("same")),
            format!(r#"{{"a": "{}"}}"#, "zz".repeat(32)),
        ] {
            assert!(Tokens::parse(&bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn query_parameters_are_read_and_bounded() {
        let q = Query::parse(Some(
            "filter=userName+eq+%22a%40b%22&startIndex=0&count=1000&excludedAttributes=members",
        ))
        .expect("valid");
        assert_eq!(q.filter.map(|f| f.value), Some("a@b".to_string()));
        assert_eq!(
            (q.start_index, q.count, q.without_members),
            (1, MAX_PAGE, true)
        );
        assert!(Query::parse(Some("count=ten")).is_err());
        assert!(Query::parse(Some("filter=%ZZ")).is_err());
        assert!(Query::parse(Some("filter=userName%20sw%20%22a%22")).is_err());
        assert_eq!(path_segment("a b/c"), "a%20b%2Fc");
    }
}
