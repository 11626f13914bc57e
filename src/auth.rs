//! Tokens: JWTs carrying `sub` (user id), `tenant` and `exp`. HS256 with the
//! configured secret by default; RS256/ES256 with a PEM public key as an
//! option. Roles never come from the token — the directory is the authority.
//! `exp`, `nbf` (not valid before) and `iat` (issued at: never in the
//! future) are checked with a small configurable clock-skew leeway.

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use std::path::Path;

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
    #[error("cannot read public key {path}: {source}")]
    KeyFile {
        path: String,
        source: std::io::Error,
    },
    #[error("public key {0} is neither an RSA nor an EC PEM key")]
    KeyFormat(String),
}

/// Verifies tokens for this node.
pub struct Verifier {
    key: DecodingKey,
    validation: Validation,
}

impl Verifier {
    pub fn hs256(secret: &str) -> Self {
        Verifier {
            key: DecodingKey::from_secret(secret.as_bytes()),
            validation: validation(Algorithm::HS256),
        }
    }

    /// RS256 or ES256, whichever the PEM file holds.
    pub fn public_key(path: &Path) -> Result<Self, AuthError> {
        let pem = std::fs::read(path).map_err(|source| AuthError::KeyFile {
            path: path.display().to_string(),
            source,
        })?;
        if let Ok(key) = DecodingKey::from_rsa_pem(&pem) {
            return Ok(Verifier {
                key,
                validation: validation(Algorithm::RS256),
            });
        }
        if let Ok(key) = DecodingKey::from_ec_pem(&pem) {
            return Ok(Verifier {
                key,
                validation: validation(Algorithm::ES256),
            });
        }
        Err(AuthError::KeyFormat(path.display().to_string()))
    }

    /// Allows `leeway_s` seconds of clock skew on `exp`, `nbf` and `iat`.
    pub fn with_leeway(mut self, leeway_s: u64) -> Self {
        self.validation.leeway = leeway_s;
        self
    }

    pub fn verify(&self, token: &str) -> Result<Claims, AuthError> {
        let claims = jsonwebtoken::decode::<Claims>(token, &self.key, &self.validation)?.claims;
        let now = crate::clock::unix_s();
        match claims.iat {
            Some(iat) if iat > now.saturating_add(self.validation.leeway) => {
                Err(AuthError::IssuedInFuture { iat, now })
            }
            _ => Ok(claims),
        }
    }
}

fn validation(alg: Algorithm) -> Validation {
    let mut v = Validation::new(alg);
    v.leeway = 0;
    // `nbf` is checked when present (with the leeway); `iat` in `verify`.
    v.validate_nbf = true;
    v.set_required_spec_claims(&["exp", "sub"]);
    v
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

    #[test]
    fn minted_tokens_verify_and_others_do_not() {
        let token = mint("s3cret", "acme", "a1", 60).expect("mint");
        let claims = Verifier::hs256("s3cret").verify(&token).expect("valid");
        assert_eq!(
            (claims.sub.as_str(), claims.tenant.as_str()),
            ("a1", "acme")
        );
        assert!(
            Verifier::hs256("other").verify(&token).is_err(),
            "forged signature"
        );
        assert!(Verifier::hs256("s3cret").verify("not.a.jwt").is_err());
    }

    #[test]
    fn expired_tokens_are_refused() {
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
        assert!(Verifier::hs256("k").verify(&token).is_err());
    }

    #[test]
    fn tokens_not_yet_valid_or_from_the_future_are_refused_beyond_the_leeway() {
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
            v.verify(&token(Some(now + 120), None)).is_err(),
            "nbf ahead"
        );
        assert!(
            v.verify(&token(None, Some(now + 120))).is_err(),
            "iat ahead"
        );
        assert!(
            v.verify(&token(Some(now + 2), Some(now + 2))).is_ok(),
            "within leeway"
        );
        assert!(
            v.verify(&token(Some(now - 60), Some(now - 60))).is_ok(),
            "past"
        );
    }
}
