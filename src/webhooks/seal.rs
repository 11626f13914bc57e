//! Webhook secrets sealed at rest (`--webhook-secrets-key`,
//! docs/WEBHOOKS.md "Secrets at rest").
//!
//! Why: the hub must sign with the secret itself, so it cannot keep only a
//! hash as it does for service keys; without a key every endpoint's secret
//! sits readable in Redis (or the data directory) and in its backups. With
//! one, a secret is stored as `sealed:v1:` then base64 of a random 12-byte
//! nonce and the AES-256-GCM ciphertext, bound to its tenant and endpoint
//! (the associated data), and opened only to sign a request.
//!
//! The flag takes a comma-separated list of keys: the first seals, every
//! one opens, so an operator changes the key by putting the new one first
//! and dropping the old one once every endpoint was written again. A secret
//! without the prefix (stored before a key was set) is used as it is and
//! sealed at its endpoint's next write. `ring` is already in the tree
//! (rustls's provider): no new crate for the cipher.

use crate::config::Config;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};

const PREFIX: &str = "sealed:v1:";

/// The keys of `--webhook-secrets-key`; the first one seals.
pub struct Keys(Vec<LessSafeKey>);

/// Why a key list or a sealed secret cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SealError {
    #[error("--webhook-secrets-key: key {0} is not base64 of 32 bytes (make one with `head -c 32 /dev/urandom | base64`)")]
    BadKey(usize),
    #[error("the endpoint's secret is sealed and no --webhook-secrets-key opens it")]
    CannotOpen,
    #[error("the secret could not be sealed")]
    CannotSeal,
}

impl Keys {
    /// The configured keys (`None`: the flag is not set, secrets are
    /// stored as they are).
    pub fn parse(flag: Option<&str>) -> Result<Option<Keys>, SealError> {
        let Some(flag) = flag.filter(|f| !f.trim().is_empty()) else {
            return Ok(None);
        };
        let keys = flag
            .split(',')
            .enumerate()
            .map(|(i, text)| {
                let bytes = STANDARD
                    .decode(text.trim())
                    .map_err(|_| SealError::BadKey(i + 1))?;
                let unbound =
                    UnboundKey::new(&AES_256_GCM, &bytes).map_err(|_| SealError::BadKey(i + 1))?;
                Ok(LessSafeKey::new(unbound))
            })
            .collect::<Result<_, _>>()?;
        Ok(Some(Keys(keys)))
    }

    /// The node's keys (checked when it started: see `node.rs`).
    pub fn configured(config: &Config) -> Result<Option<Keys>, SealError> {
        Keys::parse(config.webhook_secrets_key.as_deref())
    }

    /// A plain `secret` sealed with the first key, for `tenant`'s
    /// endpoint `id`.
    fn seal(&self, tenant: &str, id: &str, secret: &str) -> Result<String, SealError> {
        let nonce: [u8; NONCE_LEN] = rand::random();
        let mut sealed = secret.as_bytes().to_vec();
        self.0[0]
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad(tenant, id)),
                &mut sealed,
            )
            .map_err(|_| SealError::CannotSeal)?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        Ok(format!("{PREFIX}{}", STANDARD.encode(out)))
    }

    /// The key index that opens a sealed secret, and the secret.
    fn open(&self, tenant: &str, id: &str, body: &str) -> Result<(usize, String), SealError> {
        let raw = STANDARD.decode(body).map_err(|_| SealError::CannotOpen)?;
        if raw.len() < NONCE_LEN {
            return Err(SealError::CannotOpen);
        }
        let (nonce, sealed) = raw.split_at(NONCE_LEN);
        for (i, key) in self.0.iter().enumerate() {
            let nonce =
                Nonce::try_assume_unique_for_key(nonce).map_err(|_| SealError::CannotOpen)?;
            let mut buffer = sealed.to_vec();
            if let Ok(plain) = key.open_in_place(nonce, Aad::from(aad(tenant, id)), &mut buffer) {
                let plain = String::from_utf8(plain.to_vec()).map_err(|_| SealError::CannotOpen)?;
                return Ok((i, plain));
            }
        }
        Err(SealError::CannotOpen)
    }
}

fn aad(tenant: &str, id: &str) -> Vec<u8> {
    format!("presence-hub webhook secret/{tenant}/{id}").into_bytes()
}

/// A new secret as it is stored: sealed when keys are configured.
pub fn seal(
    keys: Option<&Keys>,
    tenant: &str,
    id: &str,
    secret: &str,
) -> Result<String, SealError> {
    match keys {
        Some(keys) => keys.seal(tenant, id, secret),
        None => Ok(secret.to_string()),
    }
}

/// A stored secret as it should be stored now: a plain one sealed, one
/// sealed with a later key sealed again with the first (a key change), one
/// no key opens left as it is (it cannot be helped here; signing says so).
pub fn reseal(
    keys: Option<&Keys>,
    tenant: &str,
    id: &str,
    stored: &str,
) -> Result<String, SealError> {
    let Some(keys) = keys else {
        return Ok(stored.to_string());
    };
    match stored.strip_prefix(PREFIX) {
        None => keys.seal(tenant, id, stored),
        Some(body) => match keys.open(tenant, id, body) {
            Ok((0, _)) | Err(_) => Ok(stored.to_string()),
            Ok((_, plain)) => keys.seal(tenant, id, &plain),
        },
    }
}

/// The secret to sign with: a sealed one opened with any configured key,
/// one stored before a key was set as it is.
pub fn open(
    keys: Option<&Keys>,
    tenant: &str,
    id: &str,
    stored: &str,
) -> Result<String, SealError> {
    match (stored.strip_prefix(PREFIX), keys) {
        (None, _) => Ok(stored.to_string()),
        (Some(_), None) => Err(SealError::CannotOpen),
        (Some(body), Some(keys)) => keys.open(tenant, id, body).map(|(_, plain)| plain),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> String {
        STANDARD.encode(rand::random::<[u8; 32]>())
    }

    #[test]
    fn a_sealed_secret_opens_with_its_key_only_for_its_endpoint() {
        let k = Keys::parse(Some(&key())).unwrap().unwrap();
        let sealed = seal(Some(&k), "acme", "crm", "whsec_abc").unwrap();
        assert!(sealed.starts_with(PREFIX), "{sealed}");
        assert!(!sealed.contains("whsec_abc"));
        assert_eq!(open(Some(&k), "acme", "crm", &sealed).unwrap(), "whsec_abc");
        // Bound to its tenant and endpoint: copied elsewhere it does not open.
        assert!(open(Some(&k), "acme", "other", &sealed).is_err());
        assert!(open(Some(&k), "globex", "crm", &sealed).is_err());
        // Sealing is not deterministic (a nonce each time); sealing again
        // under the same first key leaves it as it is.
        assert_ne!(seal(Some(&k), "acme", "crm", "whsec_abc").unwrap(), sealed);
        assert_eq!(reseal(Some(&k), "acme", "crm", &sealed).unwrap(), sealed);
    }

    #[test]
    fn keys_rotate_the_first_seals_every_one_opens() {
        let (old, new) = (key(), key());
        let before = Keys::parse(Some(&old)).unwrap().unwrap();
        let sealed = seal(Some(&before), "acme", "crm", "whsec_abc").unwrap();
        let both = Keys::parse(Some(&format!("{new}, {old}")))
            .unwrap()
            .unwrap();
        assert_eq!(
            open(Some(&both), "acme", "crm", &sealed).unwrap(),
            "whsec_abc"
        );
        // Sealed again under the new first key: the old one alone no longer
        // opens it, the new one alone does.
        let resealed = reseal(Some(&both), "acme", "crm", &sealed).unwrap();
        assert_ne!(resealed, sealed);
        assert!(open(Some(&before), "acme", "crm", &resealed).is_err());
        let only_new = Keys::parse(Some(&new)).unwrap().unwrap();
        assert_eq!(
            open(Some(&only_new), "acme", "crm", &resealed).unwrap(),
            "whsec_abc"
        );
        assert!(matches!(
            open(Some(&only_new), "acme", "crm", &sealed),
            Err(SealError::CannotOpen)
        ));
        assert!(open(None, "acme", "crm", &sealed).is_err());
        // One no key opens is left as it is; a plain one is sealed.
        assert_eq!(
            reseal(Some(&only_new), "acme", "crm", &sealed).unwrap(),
            sealed
        );
        let plain = reseal(Some(&only_new), "acme", "crm", "whsec_x").unwrap();
        assert_eq!(
            open(Some(&only_new), "acme", "crm", &plain).unwrap(),
            "whsec_x"
        );
    }

    #[test]
    fn plain_secrets_pass_through_and_bad_keys_are_refused() {
        assert_eq!(open(None, "a", "b", "whsec_x").unwrap(), "whsec_x");
        assert_eq!(seal(None, "a", "b", "whsec_x").unwrap(), "whsec_x");
        assert_eq!(reseal(None, "a", "b", "whsec_x").unwrap(), "whsec_x");
        assert!(Keys::parse(None).unwrap().is_none());
        assert!(Keys::parse(Some(" ")).unwrap().is_none());
        assert!(matches!(
            Keys::parse(Some("not base64!")),
            Err(SealError::BadKey(1))
        ));
        let short = STANDARD.encode([0u8; 16]);
        assert!(matches!(
            Keys::parse(Some(&format!("{},{short}", key()))),
            Err(SealError::BadKey(2))
        ));
        let k = Keys::parse(Some(&key())).unwrap().unwrap();
        for broken in ["sealed:v1:", "sealed:v1:!!", "sealed:v1:AAAA"] {
            assert!(open(Some(&k), "a", "b", broken).is_err(), "{broken}");
        }
    }
}
