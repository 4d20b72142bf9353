//! The canonical JSON payload of a delegation token.

use std::collections::BTreeMap;

use clawfirst_core::{AgentId, Asset};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{DelegationClaims, MAX_TTL_SECONDS, TokenId, parse_lower_hex};
use crate::error::AuthError;
use crate::json::UniqueObject;

/// The only payload version.
const VERSION: u64 = 1;

/// The wire form. Field order here is the canonical member order.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Payload {
    v: u64,
    tid: String,
    agent: AgentId,
    iat: u64,
    exp: u64,
    #[serde(rename = "gen")]
    generation: u32,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    max: BTreeMap<Asset, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    cnf: Option<String>,
}

impl Payload {
    pub(super) fn from_claims(claims: &DelegationClaims) -> Self {
        Self {
            v: VERSION,
            tid: claims.token_id.to_string(),
            agent: claims.agent_id.clone(),
            iat: claims.issued_at_s,
            exp: claims.expires_at_s,
            generation: claims.generation,
            max: claims
                .max_amounts
                .iter()
                .map(|(asset, units)| (*asset, units.to_string()))
                .collect(),
            cnf: claims.bound_certificate_sha256.map(hex::encode),
        }
    }

    pub(super) fn to_json(&self) -> String {
        // Serializing a struct of strings and integers into a String cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Parses an authentic payload, refusing any form this crate would not have written.
    pub(super) fn parse(bytes: &[u8]) -> Result<DelegationClaims, AuthError> {
        // The version first, so a future format is named as such rather than as malformed.
        let object = UniqueObject::parse(bytes).map_err(|_| AuthError::TokenMalformed)?;
        match object.get("v").map(Value::as_u64) {
            None => return Err(AuthError::TokenMalformed),
            Some(Some(VERSION)) => {}
            Some(_) => return Err(AuthError::TokenUnsupportedVersion),
        }

        let payload: Payload =
            serde_json::from_slice(bytes).map_err(|_| AuthError::TokenMalformed)?;
        let claims = payload.into_claims().ok_or(AuthError::TokenMalformed)?;

        // Canonical: the claims written back give exactly the bytes received (member order,
        // no whitespace, no leading zeros in amounts, lower-case hex).
        if Payload::from_claims(&claims).to_json().as_bytes() != bytes {
            return Err(AuthError::TokenMalformed);
        }
        Ok(claims)
    }

    fn into_claims(self) -> Option<DelegationClaims> {
        let lifetime = self.exp.checked_sub(self.iat)?;
        if !(1..=MAX_TTL_SECONDS).contains(&lifetime) {
            return None;
        }
        let mut max_amounts = BTreeMap::new();
        for (asset, units) in self.max {
            if units.is_empty() || !units.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            max_amounts.insert(asset, units.parse().ok()?);
        }
        let bound_certificate_sha256 = match self.cnf {
            None => None,
            Some(cnf) => Some(parse_lower_hex::<32>(&cnf)?),
        };
        Some(DelegationClaims {
            token_id: TokenId::parse_hex(&self.tid)?,
            agent_id: self.agent,
            issued_at_s: self.iat,
            expires_at_s: self.exp,
            generation: self.generation,
            max_amounts,
            bound_certificate_sha256,
        })
    }
}
