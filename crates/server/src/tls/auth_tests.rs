//! Authentication by the connection's client certificate ([`AgentAuth`] with a
//! [`ClientCertificate`]): the identity mapping, the store's say, and the bearer's precedence.

use std::collections::BTreeMap;
use std::sync::Arc;

use clawfirst_auth::ca::OperatorCa;
use clawfirst_auth::cert::{CertIdentity, certificate_sha256};
use clawfirst_auth::delegation::{DelegationKey, DelegationRequest, DelegationVerifier};
use clawfirst_core::{AgentId, KeyId, now_ms};
use clawfirst_store::{AgentStatus, AuditEvent, SqliteOptions, Store};

use crate::agent_auth::{AgentAuth, ClientCertificate, Refusal};

type TestResult = Result<(), Box<dyn std::error::Error>>;

struct Fixture {
    _dir: tempfile::TempDir,
    store: Store,
    auth: AgentAuth,
    key: DelegationKey,
    ca: OperatorCa,
}

async fn fixture() -> Result<Fixture, Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let store = Store::open_sqlite(&dir.path().join("db.sqlite"), SqliteOptions::default()).await?;
    let key = DelegationKey::generate();
    let auth = AgentAuth::new(
        store.clone(),
        DelegationVerifier::new(&key.public_key())?,
        None,
    );
    for id in ["agent-7", "agent-8"] {
        store
            .create_agent(
                &AgentId::new(id)?,
                &KeyId::new("default")?,
                AuditEvent::operator("test", "agent.created"),
            )
            .await?;
    }
    Ok(Fixture {
        _dir: dir,
        store,
        auth,
        key,
        ca: OperatorCa::generate("test CA")?,
    })
}

fn presented(der: &[u8], identity: CertIdentity) -> ClientCertificate {
    ClientCertificate {
        der: Arc::from(der),
        identity: Arc::new(identity),
    }
}

fn refusal(method: &'static str, reason: &'static str) -> Refusal {
    Refusal::Unauthorized { method, reason }
}

#[tokio::test]
async fn the_certificate_names_the_agent_under_either_mapping() -> TestResult {
    let f = fixture().await?;
    let issued =
        f.ca.issue_client_certificate(&AgentId::new("agent-7")?, 1)?;
    for mapping in [CertIdentity::default(), CertIdentity::SubjectCommonName] {
        let cert = presented(&issued.certificate_der, mapping);
        let agent = f.auth.authenticate(None, Some(&cert)).await;
        let agent = agent.map_err(|r| format!("{r:?}"))?;
        assert_eq!(agent.agent_id.as_str(), "agent-7");
        assert_eq!(agent.method, "mtls");
        assert!(agent.delegated_limits.is_none());
    }

    let other_prefix = CertIdentity::SanUri {
        prefix: "urn:example:agent:".into(),
    };
    let cert = presented(&issued.certificate_der, other_prefix);
    assert_eq!(
        f.auth.authenticate(None, Some(&cert)).await,
        Err(refusal("mtls", "cert_no_identity"))
    );
    Ok(())
}

#[tokio::test]
async fn an_unknown_or_revoked_agent_is_refused_and_a_suspended_one_admitted() -> TestResult {
    let f = fixture().await?;
    let stranger =
        f.ca.issue_client_certificate(&AgentId::new("stranger")?, 1)?;
    let cert = presented(&stranger.certificate_der, CertIdentity::default());
    assert_eq!(
        f.auth.authenticate(None, Some(&cert)).await,
        Err(refusal("mtls", "unknown agent"))
    );

    let id = AgentId::new("agent-7")?;
    let issued = f.ca.issue_client_certificate(&id, 1)?;
    let cert = presented(&issued.certificate_der, CertIdentity::default());
    let audit = || AuditEvent::operator("test", "agent.status");
    f.store
        .set_agent_status(&id, AgentStatus::Suspended, audit())
        .await?;
    assert!(f.auth.authenticate(None, Some(&cert)).await.is_ok());
    f.store
        .set_agent_status(&id, AgentStatus::Revoked, audit())
        .await?;
    assert_eq!(
        f.auth.authenticate(None, Some(&cert)).await,
        Err(refusal("mtls", "agent revoked"))
    );
    Ok(())
}

#[tokio::test]
async fn a_bearer_token_decides_and_a_bound_one_must_match_the_certificate() -> TestResult {
    let f = fixture().await?;
    let seven =
        f.ca.issue_client_certificate(&AgentId::new("agent-7")?, 1)?;
    let eight =
        f.ca.issue_client_certificate(&AgentId::new("agent-8")?, 1)?;
    let agent_8 = AgentId::new("agent-8")?;
    let issue = |bound: &[u8]| {
        f.key.issue(
            DelegationRequest {
                agent_id: agent_8.clone(),
                ttl_seconds: 600,
                max_amounts: BTreeMap::new(),
                bound_certificate_sha256: Some(certificate_sha256(bound)),
                generation: 0,
            },
            now_ms() / 1000,
        )
    };

    // Agent 7's connection, agent 8's token bound to agent 8's certificate: refused.
    let token = issue(&eight.certificate_der)?;
    let on_seven = presented(&seven.certificate_der, CertIdentity::default());
    assert_eq!(
        f.auth
            .authenticate(Some(token.token.expose()), Some(&on_seven))
            .await,
        Err(refusal(
            "delegation_token",
            "token_bound_to_other_certificate"
        ))
    );

    // On agent 8's connection the token decides (not the certificate's own method).
    let on_eight = presented(&eight.certificate_der, CertIdentity::default());
    let agent = f
        .auth
        .authenticate(Some(token.token.expose()), Some(&on_eight))
        .await
        .map_err(|r| format!("{r:?}"))?;
    assert_eq!(
        (agent.agent_id.as_str(), agent.method),
        ("agent-8", "delegation_token")
    );

    // A bad bearer is not rescued by a good certificate.
    assert_eq!(
        f.auth
            .authenticate(Some("cfk_nonsense"), Some(&on_eight))
            .await,
        Err(refusal("api_key", "malformed key"))
    );
    Ok(())
}
