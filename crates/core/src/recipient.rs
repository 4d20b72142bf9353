//! Payment recipients: a Solana address, or an e-mail address resolved through the operator's
//! payee directory.
//!
//! An e-mail never resolves by guesswork: it is either in the directory or the payment is
//! refused.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::address::{Address, AddressError};
use crate::asset::truncate_for_error;

/// The longest e-mail address accepted (RFC 5321 path limit).
const MAX_EMAIL_LEN: usize = 254;

/// A recipient as the agent named it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Recipient {
    /// A base58 Solana address.
    Address(Address),
    /// An e-mail address, normalised to lower case, to be looked up in the payee directory.
    Email(String),
}

/// Why a recipient was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RecipientError {
    /// Not a valid Solana address.
    #[error("recipient is not a valid Solana address: {0}")]
    Address(#[source] AddressError),
    /// Looked like an e-mail address but was malformed.
    #[error("recipient is not a valid e-mail address")]
    Email,
    /// A well-formed e-mail address that the payee directory does not list.
    #[error("recipient {0:?} is not in the payee directory")]
    UnknownPayee(String),
    /// Two directory e-mails name the same address.
    #[error("payees {0:?} and {1:?} name the same address; give each address one e-mail")]
    SharedAddress(String, String),
}

impl Recipient {
    /// Parses an address or an e-mail address.
    ///
    /// # Errors
    /// [`RecipientError::Address`] or [`RecipientError::Email`].
    pub fn parse(text: &str) -> Result<Self, RecipientError> {
        if text.contains('@') {
            return parse_email(text).map(Recipient::Email);
        }
        Address::parse(text)
            .map(Recipient::Address)
            .map_err(RecipientError::Address)
    }
}

impl fmt::Display for Recipient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Recipient::Address(a) => a.fmt(f),
            Recipient::Email(e) => f.write_str(e),
        }
    }
}

fn parse_email(text: &str) -> Result<String, RecipientError> {
    if text.len() > MAX_EMAIL_LEN || !text.is_ascii() {
        return Err(RecipientError::Email);
    }
    let Some((local, domain)) = text.split_once('@') else {
        return Err(RecipientError::Email);
    };
    let local_ok = !local.is_empty()
        && local.len() <= 64
        && local
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+/=?^_`{|}~.-".contains(&b))
        && !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..");
    let domain_ok = domain.contains('.')
        && domain.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        });
    if !local_ok || !domain_ok {
        return Err(RecipientError::Email);
    }
    Ok(text.to_ascii_lowercase())
}

/// The operator's directory of payees reachable by e-mail.
///
/// Each address has at most one e-mail, so a payee is the same payee whether an agent names it
/// by e-mail or by address: [`PayeeDirectory::email_of`] finds the name of an address, and a
/// policy that lists a payee by e-mail applies to its address either way.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PayeeDirectory(BTreeMap<String, Address>);

impl PayeeDirectory {
    /// Builds a directory, validating and normalising every e-mail key.
    ///
    /// # Errors
    /// [`RecipientError::Email`] for a key that is not an e-mail address,
    /// [`RecipientError::SharedAddress`] when two e-mails name one address.
    pub fn new(
        entries: impl IntoIterator<Item = (String, Address)>,
    ) -> Result<Self, RecipientError> {
        let mut map = BTreeMap::new();
        let mut names: BTreeMap<Address, String> = BTreeMap::new();
        for (email, address) in entries {
            let email = parse_email(&email)?;
            if let Some(other) = names.get(&address).filter(|o| **o != email) {
                return Err(RecipientError::SharedAddress(
                    truncate_for_error(other),
                    truncate_for_error(&email),
                ));
            }
            names.insert(address, email.clone());
            map.insert(email, address);
        }
        Ok(Self(map))
    }

    /// The directory e-mail of an address, if it has one.
    pub fn email_of(&self, address: &Address) -> Option<&str> {
        self.0
            .iter()
            .find(|(_, a)| *a == address)
            .map(|(e, _)| e.as_str())
    }

    /// Resolves a recipient to an address.
    ///
    /// # Errors
    /// [`RecipientError::UnknownPayee`] for an e-mail address that is not listed.
    pub fn resolve(&self, recipient: &Recipient) -> Result<Address, RecipientError> {
        match recipient {
            Recipient::Address(a) => Ok(*a),
            Recipient::Email(e) => self
                .0
                .get(e)
                .copied()
                .ok_or_else(|| RecipientError::UnknownPayee(truncate_for_error(e))),
        }
    }

    /// The entries, in e-mail order.
    pub fn entries(&self) -> impl Iterator<Item = (&str, &Address)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_address_has_one_payee_name() {
        let addr = Address::new([9; 32]);
        let dir = PayeeDirectory::new([("shop@example.com".to_owned(), addr)]).unwrap_or_default();
        assert_eq!(dir.email_of(&addr), Some("shop@example.com"));
        assert_eq!(dir.email_of(&Address::new([8; 32])), None);
        let shared = PayeeDirectory::new([
            ("shop@example.com".to_owned(), addr),
            ("alias@example.com".to_owned(), addr),
        ]);
        assert!(
            matches!(shared, Err(RecipientError::SharedAddress(..))),
            "{shared:?}"
        );
    }

    #[test]
    fn resolves_known_email_and_refuses_unknown() {
        let addr = Address::new([9; 32]);
        let dir = PayeeDirectory::new([("Shop@Example.com".to_owned(), addr)]);
        let dir = dir.unwrap_or_default();
        let known = Recipient::parse("shop@example.COM");
        assert_eq!(known.clone().map(|r| dir.resolve(&r)), Ok(Ok(addr)));
        let unknown = Recipient::parse("other@example.com").map(|r| dir.resolve(&r));
        assert!(matches!(unknown, Ok(Err(RecipientError::UnknownPayee(_)))));
    }

    #[test]
    fn refuses_malformed_email() {
        for bad in [
            "@x.com",
            "a@",
            "a@b",
            "a b@c.com",
            "a@@b.com",
            "a@-b.com",
            "é@b.com",
        ] {
            assert_eq!(Recipient::parse(bad), Err(RecipientError::Email), "{bad}");
        }
    }
}
