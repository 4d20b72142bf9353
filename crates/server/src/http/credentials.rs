//! The admin API's credential operations on an agent: rotation, revocation, delegation tokens
//! and the client-certificate pin.
//!
//! All take effect at once on every server sharing the database: API keys, the agent's
//! credential generation, revoked token ids and the certificate pin are checked against the
//! store on every request, so a revoked credential fails on its next use anywhere.

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use std::collections::BTreeMap;

use clawfirst_auth::delegation::{DelegationRequest, MAX_TTL_SECONDS, TokenId};
use clawfirst_core::{AgentId, Amount, now_ms};
use clawfirst_store::{AgentStatus, AuditEvent, NewApiKey, StoreError};
use serde::Deserialize;
use serde_json::json;

use super::HttpState;
use crate::api_key;

/// The credential routes.
pub(super) fn routes() -> Router<HttpState> {
    Router::new()
        .route("/admin/v1/agents/{id}/rotate", post(rotate))
        .route("/admin/v1/agents/{id}/revoke", post(revoke))
        .route("/admin/v1/agents/{id}/certificate", post(pin_certificate))
        .route("/admin/v1/agents/{id}/tokens", post(issue_token))
        .route(
            "/admin/v1/agents/{id}/tokens/{tid}/revoke",
            post(revoke_token),
        )
}

fn error(status: StatusCode, message: &str) -> Response {
    (status, axum::Json(json!({ "error": message }))).into_response()
}

fn bad_agent_id() -> Response {
    error(StatusCode::BAD_REQUEST, "agent id: invalid")
}

/// A certificate's SHA-256 as the admin API takes it: 64 hex digits.
fn certificate_hash(text: Option<&str>) -> Result<Option<[u8; 32]>, &'static str> {
    let Some(text) = text else {
        return Ok(None);
    };
    let mut out = [0u8; 32];
    match hex::decode_to_slice(text, &mut out) {
        Ok(()) => Ok(Some(out)),
        Err(_) => Err("certificate_sha256: must be 64 hex digits"),
    }
}

/// What a rotation may replace besides the API keys and delegation tokens.
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RotateBody {
    /// Hex SHA-256 of the agent's new client certificate (DER): from now on only that
    /// certificate authenticates the agent by mutual TLS.
    certificate_sha256: Option<String>,
}

/// Replaces every credential of the agent: old API keys and delegation tokens fail from now
/// on, and with a new certificate's hash, so does every other client certificate; the new API
/// key is in the answer, once.
async fn rotate(
    State(state): State<HttpState>,
    Path(id): Path<String>,
    body: Option<axum::Json<RotateBody>>,
) -> Response {
    let Ok(agent_id) = AgentId::new(id) else {
        return bad_agent_id();
    };
    let body = body.map(|b| b.0).unwrap_or_default();
    let pin = match certificate_hash(body.certificate_sha256.as_deref()) {
        Ok(pin) => pin,
        Err(message) => return error(StatusCode::BAD_REQUEST, message),
    };
    let key = api_key::generate();
    let new = NewApiKey {
        key_id_public: key.lookup_id.clone(),
        agent_id: agent_id.clone(),
        hash: key.hash,
    };
    let audit = AuditEvent::operator("admin", "agent.rotated").details(json!({
        "agent_id": agent_id.as_str(),
        "api_key_id": key.lookup_id,
        "certificate_sha256": pin.map(hex::encode),
    }));
    match state.store.rotate_credentials(new, pin, audit).await {
        Ok((agent, revoked)) => axum::Json(json!({
            "agent_id": agent_id.as_str(),
            "api_key": key.key.expose(),
            "revoked_api_keys": revoked,
            "credential_generation": agent.credential_generation,
            "certificate_sha256": agent.certificate_sha256.map(hex::encode),
        }))
        .into_response(),
        Err(StoreError::AgentNotFound(_)) => error(StatusCode::NOT_FOUND, "no such agent"),
        Err(_) => error(StatusCode::SERVICE_UNAVAILABLE, "storage unavailable"),
    }
}

/// Revokes the agent for good: its status becomes `revoked` and every API key is revoked.
async fn revoke(State(state): State<HttpState>, Path(id): Path<String>) -> Response {
    let Ok(agent_id) = AgentId::new(id) else {
        return bad_agent_id();
    };
    let audit = AuditEvent::operator("admin", "agent.revoked")
        .details(json!({ "agent_id": agent_id.as_str() }));
    if let Err(e) = state
        .store
        .set_agent_status(&agent_id, AgentStatus::Revoked, audit)
        .await
    {
        return match e {
            StoreError::AgentNotFound(_) => error(StatusCode::NOT_FOUND, "no such agent"),
            _ => error(StatusCode::SERVICE_UNAVAILABLE, "storage unavailable"),
        };
    }
    let audit = AuditEvent::operator("admin", "agent.keys_revoked")
        .details(json!({ "agent_id": agent_id.as_str() }));
    match state.store.revoke_api_keys(&agent_id, audit).await {
        Ok(revoked) => axum::Json(json!({
            "agent_id": agent_id.as_str(),
            "status": "revoked",
            "revoked_api_keys": revoked,
        }))
        .into_response(),
        Err(_) => error(StatusCode::SERVICE_UNAVAILABLE, "storage unavailable"),
    }
}

/// The client certificate an agent is pinned to.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PinBody {
    /// Hex SHA-256 of the certificate (DER); `null` lifts the pin, so that any certificate
    /// from the client CA naming the agent authenticates it again.
    certificate_sha256: Option<String>,
}

/// Pins the agent to one client certificate (or lifts the pin): every other certificate is
/// refused from the next request on, on every server sharing the database.
async fn pin_certificate(
    State(state): State<HttpState>,
    Path(id): Path<String>,
    axum::Json(body): axum::Json<PinBody>,
) -> Response {
    let Ok(agent_id) = AgentId::new(id) else {
        return bad_agent_id();
    };
    let pin = match certificate_hash(body.certificate_sha256.as_deref()) {
        Ok(pin) => pin,
        Err(message) => return error(StatusCode::BAD_REQUEST, message),
    };
    let audit = AuditEvent::operator("admin", "agent.certificate_pinned").details(json!({
        "agent_id": agent_id.as_str(),
        "certificate_sha256": pin.map(hex::encode),
    }));
    match state.store.pin_certificate(&agent_id, pin, audit).await {
        Ok(agent) => axum::Json(json!({
            "agent_id": agent_id.as_str(),
            "certificate_sha256": agent.certificate_sha256.map(hex::encode),
        }))
        .into_response(),
        Err(StoreError::AgentNotFound(_)) => error(StatusCode::NOT_FOUND, "no such agent"),
        Err(_) => error(StatusCode::SERVICE_UNAVAILABLE, "storage unavailable"),
    }
}

/// What the operator asks a delegation token to carry.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenBody {
    ttl_seconds: u64,
    /// Amounts as agents write them, e.g. `"10 USDC"`; at most one per asset.
    #[serde(default)]
    max_amounts: Vec<String>,
    /// Hex SHA-256 of the client certificate (DER) the token is bound to.
    certificate_sha256: Option<String>,
}

/// Issues a delegation token for the agent, in its current credential generation. The token
/// is in the answer, once; its id (for revocation) and claims are audited.
async fn issue_token(
    State(state): State<HttpState>,
    Path(id): Path<String>,
    axum::Json(body): axum::Json<TokenBody>,
) -> Response {
    let Ok(agent_id) = AgentId::new(id) else {
        return bad_agent_id();
    };
    if !(1..=MAX_TTL_SECONDS).contains(&body.ttl_seconds) {
        return error(StatusCode::BAD_REQUEST, "ttl_seconds: must be 1 to 86400");
    }
    let mut max_amounts = BTreeMap::new();
    for text in &body.max_amounts {
        let Ok(amount) = Amount::parse(text) else {
            return error(
                StatusCode::BAD_REQUEST,
                "max_amounts: not an amount like \"10 USDC\"",
            );
        };
        if max_amounts
            .insert(amount.asset(), amount.base_units())
            .is_some()
        {
            return error(StatusCode::BAD_REQUEST, "max_amounts: one amount per asset");
        }
    }
    let certificate = match certificate_hash(body.certificate_sha256.as_deref()) {
        Ok(certificate) => certificate,
        Err(message) => return error(StatusCode::BAD_REQUEST, message),
    };
    let agent = match state.store.agent(&agent_id).await {
        Ok(Some(agent)) if agent.status != AgentStatus::Revoked => agent,
        Ok(_) => return error(StatusCode::NOT_FOUND, "no such agent"),
        Err(_) => return error(StatusCode::SERVICE_UNAVAILABLE, "storage unavailable"),
    };
    let request = DelegationRequest {
        agent_id: agent_id.clone(),
        ttl_seconds: body.ttl_seconds,
        max_amounts,
        bound_certificate_sha256: certificate,
        generation: agent.credential_generation,
    };
    let Ok(issued) = state.delegation_key.issue(request, now_ms() / 1000) else {
        return error(StatusCode::BAD_REQUEST, "the token could not be issued");
    };
    let claims = &issued.claims;
    let limits: BTreeMap<String, String> = claims
        .max_amounts
        .iter()
        .map(|(asset, units)| (asset.symbol().to_owned(), units.to_string()))
        .collect();
    let audit = AuditEvent::operator("admin", "agent.token_issued").details(json!({
        "agent_id": agent_id.as_str(),
        "token_id": claims.token_id.to_string(),
        "expires_at_s": claims.expires_at_s,
        "max_base_units": limits,
        "bound_to_certificate": claims.bound_certificate_sha256.is_some(),
        "credential_generation": claims.generation,
    }));
    if state.store.append_audit(audit).await.is_err() {
        return error(StatusCode::SERVICE_UNAVAILABLE, "storage unavailable");
    }
    (
        StatusCode::CREATED,
        axum::Json(json!({
            "agent_id": agent_id.as_str(),
            "token": issued.token.expose(),
            "token_id": claims.token_id.to_string(),
            "expires_at_s": claims.expires_at_s,
            "max_base_units": limits,
        })),
    )
        .into_response()
}

/// Revokes one delegation token by its id, on every server sharing the database.
async fn revoke_token(
    State(state): State<HttpState>,
    Path((id, tid)): Path<(String, String)>,
) -> Response {
    let Ok(agent_id) = AgentId::new(id) else {
        return bad_agent_id();
    };
    let Some(token_id) = TokenId::parse_hex(&tid) else {
        return error(StatusCode::BAD_REQUEST, "token id: must be 32 hex digits");
    };
    let audit = AuditEvent::operator("admin", "agent.token_revoked").details(json!({
        "agent_id": agent_id.as_str(),
        "token_id": token_id.to_string(),
    }));
    match state
        .store
        .revoke_token(&token_id.to_string(), &agent_id, audit)
        .await
    {
        Ok(()) => {
            axum::Json(json!({ "token_id": token_id.to_string(), "revoked": true })).into_response()
        }
        Err(StoreError::AgentNotFound(_)) => error(StatusCode::NOT_FOUND, "no such agent"),
        Err(_) => error(StatusCode::SERVICE_UNAVAILABLE, "storage unavailable"),
    }
}
