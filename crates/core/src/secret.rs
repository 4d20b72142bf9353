//! Secret values that cannot be printed and are wiped from memory on drop.

use std::fmt;

use zeroize::Zeroizing;

/// Secret bytes: key seeds, key-file contents, passphrases.
///
/// # Security
/// `Debug` prints only the length; there is no `Display`; the buffer is zeroed on drop. The one
/// way to read the bytes is [`SecretBytes::expose`], which makes every read visible in review.
#[derive(Clone)]
pub struct SecretBytes(Zeroizing<Vec<u8>>);

impl SecretBytes {
    /// Takes ownership of secret bytes.
    pub fn new(bytes: Vec<u8>) -> Self {
        Self(Zeroizing::new(bytes))
    }

    /// The secret bytes.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretBytes([redacted; {}])", self.0.len())
    }
}

/// A secret string: API keys, passphrases, tokens.
///
/// # Security
/// As for [`SecretBytes`]: redacted `Debug`, no `Display`, zeroed on drop.
#[derive(Clone)]
pub struct SecretString(Zeroizing<String>);

impl SecretString {
    /// Takes ownership of a secret string.
    pub fn new(text: String) -> Self {
        Self(Zeroizing::new(text))
    }

    /// The secret text.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretString([redacted])")
    }
}

impl PartialEq for SecretString {
    /// Compares in constant time, so equality checks leak nothing through timing.
    fn eq(&self, other: &Self) -> bool {
        use subtle::ConstantTimeEq;
        self.0.as_bytes().ct_eq(other.0.as_bytes()).into()
    }
}

impl Eq for SecretString {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_secret() {
        let bytes = SecretBytes::new(b"hunter2-bytes".to_vec());
        let text = SecretString::new("hunter2-text".to_owned());
        let printed = format!("{bytes:?} {text:?} {bytes:#?} {text:#?}");
        assert!(!printed.contains("hunter2"), "{printed}");
    }
}
