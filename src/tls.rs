//! TLS clients (Redis, `backplane::target`; the identity provider's keys,
//! `auth::jwks`) share the process's one rustls crypto provider, installed
//! here by whichever builds a client first.

/// rustls needs one process-wide crypto provider; ring is the one built
/// in. Installing it twice is harmless (the second call is refused).
///
/// rustls 0.23.48 deprecates ring's provider for lacking post-quantum key
/// exchange (aws-lc-rs has it). Redis servers speak TLS through OpenSSL
/// builds that mostly do not offer it either, so the handshake would land
/// on X25519 all the same; ring keeps the build free of a C/CMake step.
/// An identity provider that offers ML-KEM is then reached with X25519
/// too. Revisit when Redis servers offer ML-KEM.
#[allow(deprecated)]
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
