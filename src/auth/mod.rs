//! Tokens: JWTs naming a user, a tenant and an expiry. Verified with one
//! of three kinds of key, whichever the flags name:
//!
//! - HS256 with `--jwt-secret` (the default; in-memory mode generates one),
//! - RS256/ES256 with a PEM public key (`--jwt-public-key`),
//! - an identity provider's published keys (`--oidc-issuer` or
//!   `--jwt-jwks-url`, see [`jwks`]), chosen by the token's `kid`.
//!
//! Exactly one: a node that trusts an identity provider does not also take
//! tokens signed with a shared secret anyone holding it could mint.
//! Roles never come from the token — the directory is the authority.
//! `exp` is required; `nbf` (not valid before) and `iat` (issued at: never
//! in the future) are checked with a small configurable clock-skew leeway;
//! `iss` and `aud` when configured. Which claims carry the user and the
//! tenant is configurable ([`Rules`]).

pub mod jwks;
pub mod secret;

use crate::config::Config;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::path::Path;
use std::time::Duration;

/// What a verified token says: the user (from the user claim) and the
/// tenant (from the tenant claim, or the fixed `--jwt-tenant`). Also the
/// shape of the tokens the hub mints.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub tenant: String,
    pub exp: u64,
    /// Not valid before (seconds since the epoch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<u64>,
    /// Issued at (seconds since the epoch); a token from the future is refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<u64>,
}

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("invalid token: {0}")]
    Invalid(#[from] jsonwebtoken::errors::Error),
    #[error("invalid token: issued in the future (iat {iat}, now {now})")]
    IssuedInFuture { iat: u64, now: u64 },
    #[error("invalid token: no string claim {0:?}")]
    MissingClaim(String),
    #[error("invalid token: no key id (kid) in its header")]
    NoKeyId,
    #[error("invalid token: no key {0:?} from the identity provider")]
    UnknownKey(String),
    #[error("invalid token: algorithm {alg:?} not allowed for key {kid:?}")]
    AlgorithmNotAllowed { alg: Algorithm, kid: String },
    #[error("cannot read public key {path}: {source}")]
    KeyFile {
        path: String,
        source: std::io::Error,
    },
    #[error("public key {0} is neither an RSA nor an EC PEM key")]
    KeyFormat(String),
    #[error("identity provider: {0}")]
    Jwks(#[from] jwks::JwksError),
    #[error("{0}")]
    Config(String),
}

/// Where the tenant of a token comes from.
#[derive(Clone, Debug)]
pub enum TenantFrom {
    Claim(String),
    /// `--jwt-tenant`: one tenant for every token.
    Fixed(String),
}

/// Which claims name the user and the tenant, and what `iss`/`aud` must be.
#[derive(Clone, Debug)]
pub struct Rules {
    pub user_claim: String,
    pub tenant: TenantFrom,
    pub issuer: Option<String>,
    pub audience: Vec<String>,
}

impl Default for Rules {
    /// `sub` and `tenant`, no `iss` or `aud` required: the minted tokens.
    fn default() -> Self {
        Rules {
            user_claim: "sub".into(),
            tenant: TenantFrom::Claim("tenant".into()),
            issuer: None,
            audience: Vec::new(),
        }
    }
}

enum Keys {
    /// A secret or a PEM key, for one algorithm.
    Static { key: DecodingKey, alg: Algorithm },
    /// The identity provider's key set.
    Jwks(jwks::KeySet),
}

/// Verifies tokens for this node.
pub struct Verifier {
    keys: Keys,
    rules: Rules,
    leeway: u64,
}

impl Verifier {
    pub fn hs256(secret: &str) -> Self {
        Verifier::with_keys(Keys::Static {
            key: DecodingKey::from_secret(secret.as_bytes()),
            alg: Algorithm::HS256,
        })
    }

    /// RS256 or ES256, whichever the PEM file holds.
    pub fn public_key(path: &Path) -> Result<Self, AuthError> {
        let pem = std::fs::read(path).map_err(|source| AuthError::KeyFile {
            path: path.display().to_string(),
            source,
        })?;
        if let Ok(key) = DecodingKey::from_rsa_pem(&pem) {
            return Ok(Verifier::with_keys(Keys::Static {
                key,
                alg: Algorithm::RS256,
            }));
        }
        if let Ok(key) = DecodingKey::from_ec_pem(&pem) {
            return Ok(Verifier::with_keys(Keys::Static {
                key,
                alg: Algorithm::ES256,
            }));
        }
        Err(AuthError::KeyFormat(path.display().to_string()))
    }

    /// The identity provider's keys; fetching starts in the background.
    pub fn jwks(settings: jwks::Settings) -> Result<Self, AuthError> {
        Ok(Verifier::with_keys(Keys::Jwks(jwks::KeySet::start(
            settings,
        )?)))
    }

    fn with_keys(keys: Keys) -> Self {
        Verifier {
            keys,
            rules: Rules::default(),
            leeway: 0,
        }
    }

    /// The verifier the flags name, and the HS256 secret when none is named
    /// and one was generated (in-memory dev mode).
    pub fn from_config(config: &Config) -> Result<(Verifier, Option<String>), AuthError> {
        let source = match (&config.oidc_issuer, &config.jwt_jwks_url) {
            (Some(issuer), _) => Some(jwks::Source::Discovery {
                issuer: issuer.clone(),
            }),
            (None, Some(url)) => Some(jwks::Source::Url(url.clone())),
            (None, None) => None,
        };
        let keyed = [
            source.is_some(),
            config.jwt_public_key.is_some(),
            config.jwt_secret.is_some(),
        ];
        // Flags built in code (tests) skip clap's checks: checked again here.
        if keyed.iter().filter(|k| **k).count() > 1 {
            return Err(AuthError::Config(
                "name one kind of token key: --oidc-issuer, --jwt-jwks-url, --jwt-public-key or --jwt-secret".into(),
            ));
        }
        if source.is_some() && config.jwt_audience.is_empty() {
            // Without it, a token the same provider issued to any other
            // application would sign in here.
            return Err(AuthError::Config(
                "--oidc-issuer/--jwt-jwks-url need --jwt-audience: the audience (client id) the identity provider puts in tokens for the hub".into(),
            ));
        }
        let mut generated = None;
        let verifier = match (source, &config.jwt_public_key, &config.jwt_secret) {
            (Some(source), _, _) => Verifier::jwks(jwks::Settings {
                source,
                ca: config.oidc_ca.clone(),
                min_refresh: Duration::from_millis(config.jwks_min_refresh_ms),
                max_age: Duration::from_millis(config.jwks_max_age_ms),
                fetch_timeout: Duration::from_millis(config.jwks_fetch_timeout_ms.max(1)),
            })?,
            (None, Some(path), _) => Verifier::public_key(path)?,
            (None, None, Some(secret)) => Verifier::hs256(secret),
            (None, None, None) => {
                let secret = generate_secret();
                let v = Verifier::hs256(&secret);
                generated = Some(secret);
                v
            }
        };
        let rules = Rules {
            user_claim: config.jwt_user_claim.clone(),
            tenant: match &config.jwt_tenant {
                Some(id) => TenantFrom::Fixed(id.clone()),
                None => TenantFrom::Claim(config.jwt_tenant_claim.clone()),
            },
            issuer: config.jwt_issuer.clone().or(config.oidc_issuer.clone()),
            audience: config.jwt_audience.clone(),
        };
        Ok((
            verifier.with_rules(rules).with_leeway(config.jwt_leeway_s),
            generated,
        ))
    }

    /// Whether the flags name a key every node shares (a generated dev
    /// secret is not one).
    pub fn configured(config: &Config) -> bool {
        config.jwt_secret.is_some()
            || config.jwt_public_key.is_some()
            || config.oidc_issuer.is_some()
            || config.jwt_jwks_url.is_some()
    }

    pub fn with_rules(mut self, rules: Rules) -> Self {
        self.rules = rules;
        self
    }

    /// Allows `leeway_s` seconds of clock skew on `exp`, `nbf` and `iat`.
    pub fn with_leeway(mut self, leeway_s: u64) -> Self {
        self.leeway = leeway_s;
        self
    }

    /// Verifies `token`. A lookup in memory, except with an identity
    /// provider when the token's `kid` is unknown or the keys aged out:
    /// then a fetch is awaited, at most the fetch timeout.
    pub async fn verify(&self, token: &str) -> Result<Claims, AuthError> {
        let header = jsonwebtoken::decode_header(token)?;
        let held;
        let (key, algorithms) = match &self.keys {
            Keys::Static { key, alg } => (key, vec![*alg]),
            Keys::Jwks(set) => {
                let kid = header.kid.ok_or(AuthError::NoKeyId)?;
                held = set
                    .key(&kid)
                    .await
                    .ok_or(AuthError::UnknownKey(kid.clone()))?;
                if !held.algorithms.contains(&header.alg) {
                    return Err(AuthError::AlgorithmNotAllowed {
                        alg: header.alg,
                        kid,
                    });
                }
                (&held.decoding, vec![header.alg])
            }
        };
        let claims =
            jsonwebtoken::decode::<Map<String, Value>>(token, key, &self.validation(algorithms))?
                .claims;
        let string = |name: &str| {
            claims
                .get(name)
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .ok_or_else(|| AuthError::MissingClaim(name.to_string()))
        };
        let number = |name: &str| claims.get(name).and_then(Value::as_u64);
        let out = Claims {
            sub: string(&self.rules.user_claim)?,
            tenant: match &self.rules.tenant {
                TenantFrom::Fixed(id) => id.clone(),
                TenantFrom::Claim(name) => string(name)?,
            },
            // Required and checked by `decode`.
            exp: number("exp").unwrap_or_default(),
            nbf: number("nbf"),
            iat: number("iat"),
        };
        let now = crate::clock::unix_s();
        match out.iat {
            Some(iat) if iat > now.saturating_add(self.leeway) => {
                Err(AuthError::IssuedInFuture { iat, now })
            }
            _ => Ok(out),
        }
    }

    fn validation(&self, algorithms: Vec<Algorithm>) -> Validation {
        let mut v = Validation::new(algorithms[0]);
        v.algorithms = algorithms;
        v.leeway = self.leeway;
        // `nbf` is checked when present (with the leeway); `iat` in `verify`.
        v.validate_nbf = true;
        let mut required = vec!["exp"];
        if let Some(issuer) = &self.rules.issuer {
            v.set_issuer(&[issuer]);
            required.push("iss");
        }
        if !self.rules.audience.is_empty() {
            v.set_audience(&self.rules.audience);
            required.push("aud");
        }
        v.set_required_spec_claims(&required);
        v
    }
}

/// Mints an HS256 token (the `token` subcommand, tests and the dev links).
pub fn mint(secret: &str, tenant: &str, user: &str, ttl_s: u64) -> Result<String, AuthError> {
    let claims = Claims {
        sub: user.to_string(),
        tenant: tenant.to_string(),
        exp: crate::clock::unix_s() + ttl_s,
        nbf: None,
        iat: None,
    };
    Ok(jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )?)
}

/// A random secret for the in-memory dev mode.
pub fn generate_secret() -> String {
    format!(
        "{:016x}{:016x}",
        rand::random::<u64>(),
        rand::random::<u64>()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn minted_tokens_verify_and_others_do_not() {
        let token = mint("s3cret", "acme", "a1", 60).expect("mint");
        let claims = Verifier::hs256("s3cret")
            .verify(&token)
            .await
            .expect("valid");
        assert_eq!(
            (claims.sub.as_str(), claims.tenant.as_str()),
            ("a1", "acme")
        );
        assert!(
            Verifier::hs256("other").verify(&token).await.is_err(),
            "forged signature"
        );
        assert!(Verifier::hs256("s3cret").verify("not.a.jwt").await.is_err());
    }

    #[tokio::test]
    async fn expired_tokens_are_refused() {
        let claims = Claims {
            sub: "a1".into(),
            tenant: "acme".into(),
            exp: crate::clock::unix_s() - 5,
            nbf: None,
            iat: None,
        };
        let token =
            jsonwebtoken::encode(&Header::default(), &claims, &EncodingKey::from_secret(b"k"))
                .expect("encode");
        assert!(Verifier::hs256("k").verify(&token).await.is_err());
    }

    #[tokio::test]
    async fn tokens_not_yet_valid_or_from_the_future_are_refused_beyond_the_leeway() {
        let now = crate::clock::unix_s();
        let token = |nbf: Option<u64>, iat: Option<u64>| {
            let claims = Claims {
                sub: "a1".into(),
                tenant: "acme".into(),
                exp: now + 600,
                nbf,
                iat,
            };
            jsonwebtoken::encode(&Header::default(), &claims, &EncodingKey::from_secret(b"k"))
                .expect("encode")
        };
        let v = Verifier::hs256("k").with_leeway(5);
        assert!(
            v.verify(&token(Some(now + 120), None)).await.is_err(),
            "nbf ahead"
        );
        assert!(
            v.verify(&token(None, Some(now + 120))).await.is_err(),
            "iat ahead"
        );
        assert!(
            v.verify(&token(Some(now + 2), Some(now + 2))).await.is_ok(),
            "within leeway"
        );
        assert!(
            v.verify(&token(Some(now - 60), Some(now - 60)))
                .await
                .is_ok(),
            "past"
        );
    }

    /// The user and tenant come from the configured claims; `iss` and
    /// `aud` must match when configured.
    #[tokio::test]
    async fn claims_rules_choose_user_and_tenant_and_check_iss_and_aud() {
        let exp = crate::clock::unix_s() + 600;
        let token = |claims: serde_json::Value| {
            jsonwebtoken::encode(&Header::default(), &claims, &EncodingKey::from_secret(b"k"))
                .expect("encode")
        };
        let rules = Rules {
            user_claim: "email".into(),
            tenant: TenantFrom::Fixed("acme".into()),
            issuer: Some("https://idp".into()),
            audience: vec!["hub".into()],
        };
        let v = Verifier::hs256("k").with_rules(rules);
        let good = serde_json::json!({"email": "ann@acme.test", "sub": "x1", "iss": "https://idp", "aud": "hub", "exp": exp});
        let claims = v.verify(&token(good.clone())).await.expect("valid");
        assert_eq!(
            (claims.sub.as_str(), claims.tenant.as_str()),
            ("ann@acme.test", "acme")
        );
        for (field, value) in [
            ("iss", serde_json::json!("https://other")),
            ("aud", serde_json::json!("other")),
            ("email", serde_json::json!(7)),
        ] {
            let mut bad = good.clone();
            bad[field] = value;
            assert!(v.verify(&token(bad)).await.is_err(), "{field}");
        }
        for field in ["iss", "aud", "email", "exp"] {
            let mut bad = good.clone();
            bad.as_object_mut().expect("object").remove(field);
            assert!(v.verify(&token(bad)).await.is_err(), "without {field}");
        }
    }
}
