//! Static secrets (SCIM tokens, the integration API's service keys): only
//! their SHA-256 is kept, and a presented secret is hashed and compared
//! with a stored hash in constant time, so neither a copy of the store nor
//! the time a refusal takes tells an attacker the secret.
//!
//! SHA-256 without a salt or a slow KDF is enough here: the secrets are
//! the hub's own 32 random bytes (or an operator's long token), not
//! passwords a person chose, so there is no dictionary to try.

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The SHA-256 of a secret.
pub type SecretHash = [u8; 32];

/// The hash a secret is stored as.
pub fn hash(secret: &str) -> SecretHash {
    Sha256::digest(secret.as_bytes()).into()
}

/// Whether `given` hashes to `stored`, compared in constant time.
pub fn matches(stored: &SecretHash, given: &str) -> bool {
    bool::from(stored.ct_eq(&hash(given)))
}

/// Whether two hashes are equal, compared in constant time.
pub fn same(a: &SecretHash, b: &SecretHash) -> bool {
    bool::from(a.ct_eq(b))
}

/// 64 hex digits as a hash; `None` for anything else.
pub fn from_hex(text: &str) -> Option<SecretHash> {
    let bytes = text.as_bytes();
    if bytes.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, pair) in bytes.chunks(2).enumerate() {
        let digit = |b: u8| (b as char).to_digit(16);
        out[i] = u8::try_from(digit(pair[0])? * 16 + digit(pair[1])?).ok()?;
    }
    Some(out)
}

/// A hash as 64 lowercase hex digits.
pub fn to_hex(hash: &SecretHash) -> String {
    hash.iter().map(|b| format!("{b:02x}")).collect()
}

/// `n` random bytes as lowercase hex (a new secret or id).
pub fn random_hex(n: usize) -> String {
    (0..n)
        .map(|_| format!("{:02x}", rand::random::<u8>()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trips_and_refuses_the_rest() {
        let h = hash("s3cret");
        assert_eq!(from_hex(&to_hex(&h)), Some(h));
        assert_eq!(from_hex("zz"), None);
        assert_eq!(from_hex(&"g".repeat(64)), None);
        assert!(matches(&h, "s3cret"));
        assert!(!matches(&h, "s3cret "));
        assert!(same(&h, &hash("s3cret")));
        assert_eq!(random_hex(16).len(), 32);
    }
}
