//! A bounded memo of credentials whose signature has already been verified.
//!
//! An agent sends the same bearer token with every request until it expires. Verifying its
//! signature again each time (an Ed25519, ECDSA or RSA verification, plus decoding and parsing
//! the claims) is most of what authentication costs, and gives the same answer every time: the
//! signature covers the exact bytes, and the key it was checked with does not change while the
//! verifier that owns the memo exists. So a verifier remembers, per token, what the signature
//! established, and on a later request with the byte-identical token skips straight to the
//! checks that can change: the time window, the certificate binding, and whatever the caller
//! then asks the store (revocation, rotation, suspension).
//!
//! # Security
//!
//! - Entries are keyed by the SHA-256 of the whole token, so only the byte-identical token can
//!   reuse an entry; a token that differs in one bit (a tampered signature, other claims) is
//!   verified from scratch. The token itself is never stored.
//! - Only what a verified signature established is remembered: a token whose signature or
//!   content was refused is never memoized, and the checks that can change (time window,
//!   certificate binding, the store's) run on every request whether the token was remembered
//!   or not.
//! - A memo belongs to one verifier, and so to one key set: when keys are reloaded a new
//!   verifier starts with an empty memo, and a removed key stops verifying anything at once.
//! - The memo is bounded: when it is full, expired entries are dropped, and if it is still
//!   full, all of it. Forgetting only costs a verification.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use sha2::{Digest, Sha256};

/// The most tokens one verifier remembers.
pub(crate) const MEMO_CAPACITY: usize = 4096;

/// What a verifier remembers of one token: its verified content and its expiry.
pub(crate) trait Expiring {
    /// The second (Unix time, leeway included) from which the token is no longer good.
    fn dead_from_s(&self) -> u64;
}

/// Verified tokens by SHA-256.
#[derive(Debug)]
pub(crate) struct VerifiedMemo<T> {
    entries: Mutex<HashMap<[u8; 32], T>>,
    capacity: usize,
}

impl<T: Clone + Expiring> Default for VerifiedMemo<T> {
    fn default() -> Self {
        Self::with_capacity(MEMO_CAPACITY)
    }
}

/// The memo key of a token.
pub(crate) fn token_key(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

impl<T: Clone + Expiring> VerifiedMemo<T> {
    /// An empty memo holding at most `capacity` tokens.
    pub(crate) fn with_capacity(capacity: usize) -> Self {
        Self {
            entries: Mutex::new(HashMap::new()),
            capacity,
        }
    }

    /// What was verified of the token with this key, if it is remembered.
    pub(crate) fn get(&self, key: &[u8; 32]) -> Option<T> {
        self.lock().get(key).cloned()
    }

    /// Remembers a token that passed every check at `now_s`.
    pub(crate) fn insert(&self, key: [u8; 32], verified: T, now_s: u64) {
        let mut entries = self.lock();
        if entries.len() >= self.capacity && !entries.contains_key(&key) {
            entries.retain(|_, entry| entry.dead_from_s() > now_s);
            if entries.len() >= self.capacity {
                entries.clear();
            }
        }
        entries.insert(key, verified);
    }

    /// How many tokens are remembered.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.lock().len()
    }

    /// The map, even if a panicking thread poisoned the lock: the map is only ever changed by
    /// single `insert`, `retain` or `clear` calls, so it is never left half-updated.
    fn lock(&self) -> MutexGuard<'_, HashMap<[u8; 32], T>> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone, Debug, PartialEq)]
    struct Entry(u64);

    impl Expiring for Entry {
        fn dead_from_s(&self) -> u64 {
            self.0
        }
    }

    #[test]
    fn only_the_identical_token_hits() {
        let memo = VerifiedMemo::with_capacity(8);
        memo.insert(token_key("a.b.c"), Entry(100), 10);
        assert_eq!(memo.get(&token_key("a.b.c")), Some(Entry(100)));
        assert_eq!(memo.get(&token_key("a.b.d")), None);
        assert_eq!(memo.get(&token_key("a.b.c ")), None);
    }

    #[test]
    fn a_full_memo_drops_expired_entries_first_then_everything() {
        let memo = VerifiedMemo::with_capacity(3);
        memo.insert(token_key("1"), Entry(5), 0);
        memo.insert(token_key("2"), Entry(100), 0);
        memo.insert(token_key("3"), Entry(100), 0);
        // Full; at 10 the first has expired and makes room.
        memo.insert(token_key("4"), Entry(100), 10);
        assert_eq!(memo.len(), 3);
        assert_eq!(memo.get(&token_key("1")), None);
        assert_eq!(memo.get(&token_key("2")), Some(Entry(100)));
        // Full of live entries: all are forgotten, the new one stays.
        memo.insert(token_key("5"), Entry(100), 10);
        assert_eq!(memo.len(), 1);
        assert_eq!(memo.get(&token_key("5")), Some(Entry(100)));
    }

    #[test]
    fn reinserting_a_remembered_token_in_a_full_memo_keeps_the_others() {
        let memo = VerifiedMemo::with_capacity(2);
        memo.insert(token_key("1"), Entry(100), 0);
        memo.insert(token_key("2"), Entry(100), 0);
        memo.insert(token_key("2"), Entry(100), 0);
        assert_eq!(memo.len(), 2);
    }
}
