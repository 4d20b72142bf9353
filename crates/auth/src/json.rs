//! Strict JSON objects for untrusted input.
//!
//! `serde_json` keeps the last of two equal keys in a map. Two parsers that disagree on which
//! duplicate wins are a classic way to smuggle a claim past a check, so every object parsed from
//! a credential goes through [`UniqueObject`], which refuses duplicate keys.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::Value;

/// A JSON object whose top-level keys are all distinct.
#[derive(Debug, Default)]
pub(crate) struct UniqueObject(pub(crate) BTreeMap<String, Value>);

impl UniqueObject {
    /// Parses bytes that must hold exactly one JSON object with distinct keys.
    pub(crate) fn parse(bytes: &[u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(bytes)
    }

    pub(crate) fn get(&self, key: &str) -> Option<&Value> {
        self.0.get(key)
    }
}

impl<'de> Deserialize<'de> for UniqueObject {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(UniqueObjectVisitor)
    }
}

struct UniqueObjectVisitor;

impl<'de> Visitor<'de> for UniqueObjectVisitor {
    type Value = UniqueObject;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a json object with distinct keys")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<UniqueObject, A::Error> {
        let mut out = BTreeMap::new();
        while let Some((key, value)) = map.next_entry::<String, Value>()? {
            if out.contains_key(&key) {
                return Err(serde::de::Error::custom("duplicate key"));
            }
            out.insert(key, value);
        }
        Ok(UniqueObject(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicate_keys_are_refused() {
        assert!(UniqueObject::parse(br#"{"sub":"a","sub":"b"}"#).is_err());
        assert!(UniqueObject::parse(br#"{"sub":"a","aud":"b"}"#).is_ok());
        assert!(UniqueObject::parse(br#"["sub"]"#).is_err());
        assert!(UniqueObject::parse(br#"{"sub":"a"} x"#).is_err());
    }
}
