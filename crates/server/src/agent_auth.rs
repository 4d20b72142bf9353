//! Who an HTTP request comes from: API keys, delegation tokens, JWT bearer tokens and client
//! certificates (mutual TLS).
//!
//! A bearer credential, when present, decides; its form picks the method: `cfk_…` is an API
//! key, `cfdt_…` a delegation token that ClawFirst issued, anything else a JWT (when
//! `[auth.jwt]` is configured). Each method checks the credential itself first, then the store,
//! in one read (answered from [`crate::auth_cache`] while nothing was committed since): the
//! agent must exist and not be revoked; an API key must not be revoked; a delegation token must
//! belong to the agent's current credential generation (so `clawfirst agents rotate` voids it at
//! once on every server sharing the database) and must not be revoked by id. A delegation token
//! bound to a certificate must come over a connection that presented that certificate. Without
//! a bearer credential, the connection's verified client certificate names the agent (method
//! `mtls`), which must exist and not be revoked; when the operator pinned the agent to one
//! certificate (`clawfirst agents rotate ID --mtls` does), it must be that one.
//!
//! # Security
//!
//! A refusal names the method and a reason for the log and the audit trail; the caller only
//! ever gets a plain 401. No credential, and no part of one beyond an API key's public lookup
//! id, is ever logged or audited. API-key hashes are compared in constant time.

use std::collections::BTreeMap;
use std::sync::Arc;

use clawfirst_auth::cert::{CertIdentity, agent_from_certificate, certificate_sha256};
use clawfirst_auth::delegation::DelegationVerifier;
use clawfirst_auth::jwt::JwksCache;
use clawfirst_core::{AgentId, Asset, now_ms};
use clawfirst_store::{AgentRecord, AgentStatus, Store};
use subtle::ConstantTimeEq;

use crate::api_key;
use crate::auth_cache::AuthReadCache;

/// An authenticated agent, and the tighter limits its credential carries, if any.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Authenticated {
    /// The agent.
    pub agent_id: AgentId,
    /// How it authenticated: `api_key`, `delegation_token`, `jwt` or `mtls`.
    pub method: &'static str,
    /// A delegation token's per-payment maximum per asset. When present, assets it does not
    /// list cannot be paid with this credential.
    pub delegated_limits: Option<Arc<BTreeMap<Asset, u64>>>,
}

/// Why a request is not admitted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The credential is missing or not good: 401, audited with the method and reason.
    Unauthorized {
        /// `none`, `api_key`, `delegation_token`, `jwt` or `mtls`.
        method: &'static str,
        /// Why, for operators.
        reason: &'static str,
    },
    /// The store could not be asked: 503.
    Unavailable,
}

/// The client certificate a TLS connection presented, which rustls has verified against the
/// configured client CA, and where in it the agent id is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientCertificate {
    /// The leaf certificate, DER.
    pub der: Arc<[u8]>,
    /// The `[tls]` identity mapping.
    pub identity: Arc<CertIdentity>,
}

fn refused(method: &'static str, reason: &'static str) -> Refusal {
    Refusal::Unauthorized { method, reason }
}

/// The agent authenticators of the HTTP transport.
#[derive(Debug)]
pub struct AgentAuth {
    /// The store's answers, kept while the database is unchanged.
    reads: AuthReadCache,
    delegation: DelegationVerifier,
    jwt: Option<Arc<JwksCache>>,
}

impl AgentAuth {
    /// Authenticators over the store, with the delegation key's verifier and, if configured,
    /// the JWT key cache.
    pub fn new(store: Store, delegation: DelegationVerifier, jwt: Option<Arc<JwksCache>>) -> Self {
        Self {
            reads: AuthReadCache::new(store),
            delegation,
            jwt,
        }
    }

    /// Authenticates a request: by its bearer credential when it has one (`certificate`, the
    /// connection's client certificate, then only matters to certificate-bound delegation
    /// tokens), else by the client certificate.
    ///
    /// # Errors
    /// A [`Refusal`] naming the method and reason.
    pub async fn authenticate(
        &self,
        bearer: Option<&str>,
        certificate: Option<&ClientCertificate>,
    ) -> Result<Authenticated, Refusal> {
        let Some(credential) = bearer else {
            return match certificate {
                Some(certificate) => self.certificate(certificate).await,
                None => Err(refused("none", "no credential")),
            };
        };
        if credential.starts_with("cfk_") {
            self.api_key(credential).await
        } else if credential.starts_with("cfdt_") {
            let der = certificate.map(|c| &*c.der);
            self.delegation_token(credential, der).await
        } else {
            self.jwt(credential).await
        }
    }

    async fn api_key(&self, presented: &str) -> Result<Authenticated, Refusal> {
        const METHOD: &str = "api_key";
        let Some(lookup) = api_key::lookup_id(presented) else {
            return Err(refused(METHOD, "malformed key"));
        };
        let (record, agent) = match self.reads.api_key_and_agent(lookup).await {
            Ok(Some(found)) => found,
            Ok(None) => return Err(refused(METHOD, "unknown key")),
            Err(_) => return Err(Refusal::Unavailable),
        };
        // Constant-time comparison of the SHA-256 hashes.
        if !api_key::matches(presented, &record.hash) {
            return Err(refused(METHOD, "wrong secret"));
        }
        if record.revoked_at_ms.is_some() {
            return Err(refused(METHOD, "revoked key"));
        }
        usable(agent, METHOD)?;
        Ok(Authenticated {
            agent_id: record.agent_id,
            method: METHOD,
            delegated_limits: None,
        })
    }

    async fn delegation_token(
        &self,
        token: &str,
        certificate: Option<&[u8]>,
    ) -> Result<Authenticated, Refusal> {
        const METHOD: &str = "delegation_token";
        let claims = self
            .delegation
            .verify(token, now_ms() / 1000, certificate)
            .map_err(|e| refused(METHOD, e.reason()))?;
        let (agent, revoked) = self
            .reads
            .agent_and_token_revoked(&claims.agent_id, &claims.token_id.to_string())
            .await
            .map_err(|_| Refusal::Unavailable)?;
        let agent = usable(agent, METHOD)?;
        if claims.generation != agent.credential_generation {
            return Err(refused(METHOD, "token_from_before_rotation"));
        }
        if revoked {
            return Err(refused(METHOD, "token_revoked"));
        }
        let limits = (!claims.max_amounts.is_empty()).then(|| Arc::new(claims.max_amounts));
        Ok(Authenticated {
            agent_id: claims.agent_id,
            method: METHOD,
            delegated_limits: limits,
        })
    }

    async fn jwt(&self, token: &str) -> Result<Authenticated, Refusal> {
        const METHOD: &str = "jwt";
        let Some(jwt) = &self.jwt else {
            return Err(refused(METHOD, "jwt_not_configured"));
        };
        let identity = jwt
            .verify(token, now_ms() / 1000)
            .await
            .map_err(|e| refused(METHOD, e.reason()))?;
        self.usable_agent(&identity.agent_id, METHOD).await?;
        Ok(Authenticated {
            agent_id: identity.agent_id,
            method: METHOD,
            delegated_limits: None,
        })
    }

    async fn certificate(&self, certificate: &ClientCertificate) -> Result<Authenticated, Refusal> {
        const METHOD: &str = "mtls";
        let agent_id = agent_from_certificate(&certificate.der, &certificate.identity)
            .map_err(|e| refused(METHOD, e.reason()))?;
        let agent = self.usable_agent(&agent_id, METHOD).await?;
        if let Some(pin) = &agent.certificate_sha256 {
            // Constant-time comparison of the SHA-256 hashes.
            let same: bool = certificate_sha256(&certificate.der).ct_eq(pin).into();
            if !same {
                return Err(refused(METHOD, "certificate_replaced"));
            }
        }
        Ok(Authenticated {
            agent_id,
            method: METHOD,
            delegated_limits: None,
        })
    }

    /// The agent, if it exists and is not revoked (a suspended agent authenticates and is then
    /// refused payments with `AGENT_SUSPENDED`).
    async fn usable_agent(
        &self,
        agent_id: &AgentId,
        method: &'static str,
    ) -> Result<AgentRecord, Refusal> {
        match self.reads.agent(agent_id).await {
            Ok(agent) => usable(agent, method),
            Err(_) => Err(Refusal::Unavailable),
        }
    }
}

/// The agent, if there is one and it is not revoked.
fn usable(agent: Option<AgentRecord>, method: &'static str) -> Result<AgentRecord, Refusal> {
    match agent {
        Some(agent) if agent.status != AgentStatus::Revoked => Ok(agent),
        Some(_) => Err(refused(method, "agent revoked")),
        None => Err(refused(method, "unknown agent")),
    }
}
