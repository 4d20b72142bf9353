//! Agent API keys: generation, the stored hash, and verification.
//!
//! A key reads `cfk_<lookup id>_<secret>`: a 12-hex-digit lookup id that is not secret, and 32
//! random bytes (256 bits) in unpadded base64url. Only the SHA-256 of the whole key is stored.
//! The key is shown once, when it is created.
//!
//! # Security
//!
//! Verification looks the record up by its lookup id, then compares SHA-256 hashes with
//! [`subtle::ConstantTimeEq`], so timing reveals nothing about how much of a guess was right.
//! A key is never logged: errors and `Debug` output name the lookup id at most.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use clawfirst_core::secret::SecretString;
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

const PREFIX: &str = "cfk_";

/// A newly generated key: the secret to show once, and what to store.
#[derive(Debug)]
pub struct NewApiKey {
    /// The full key, for the operator or agent.
    pub key: SecretString,
    /// The non-secret lookup id.
    pub lookup_id: String,
    /// SHA-256 of the full key, the only thing stored.
    pub hash: [u8; 32],
}

/// Generates a key with 256 bits of randomness.
pub fn generate() -> NewApiKey {
    let mut id = [0u8; 6];
    let mut secret = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut id);
    rand::rngs::OsRng.fill_bytes(&mut secret);
    let lookup_id = hex::encode(id);
    let key = format!("{PREFIX}{lookup_id}_{}", URL_SAFE_NO_PAD.encode(secret));
    let hash = hash(&key);
    NewApiKey {
        key: SecretString::new(key),
        lookup_id,
        hash,
    }
}

/// SHA-256 of a presented key.
pub fn hash(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

/// The lookup id of a presented key, if it has the right shape.
pub fn lookup_id(key: &str) -> Option<&str> {
    let rest = key.strip_prefix(PREFIX)?;
    let (id, secret) = rest.split_once('_')?;
    let well_formed = id.len() == 12
        && id.bytes().all(|b| b.is_ascii_hexdigit())
        && secret.len() == 43
        && secret
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    well_formed.then_some(id)
}

/// Whether a presented key matches a stored hash, compared in constant time.
pub fn matches(presented: &str, stored: &[u8; 32]) -> bool {
    hash(presented).ct_eq(stored).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_verify_and_others_do_not() {
        let k = generate();
        assert_eq!(lookup_id(k.key.expose()), Some(k.lookup_id.as_str()));
        assert!(matches(k.key.expose(), &k.hash));
        let other = generate();
        assert!(!matches(other.key.expose(), &k.hash));
    }

    #[test]
    fn malformed_keys_have_no_lookup_id() {
        for bad in [
            "",
            "cfk_",
            "cfk_abc_def",
            "xyz_0123456789ab_",
            "cfk_0123456789ab_short",
        ] {
            assert_eq!(lookup_id(bad), None, "{bad}");
        }
    }

    #[test]
    fn debug_of_a_new_key_hides_the_secret() {
        let k = generate();
        let printed = format!("{k:?}");
        assert!(!printed.contains(k.key.expose()), "{printed}");
    }
}
