//! The admin API's credential operations on an agent: rotation and revocation.
//!
//! Both take effect at once on every server sharing the database: API keys are checked against
//! the store on every request, so a revoked key fails on its next use anywhere.

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use clawfirst_core::AgentId;
use clawfirst_store::{AgentStatus, AuditEvent, NewApiKey, StoreError};
use serde_json::json;

use super::HttpState;
use crate::api_key;

/// The credential routes.
pub(super) fn routes() -> Router<HttpState> {
    Router::new()
        .route("/admin/v1/agents/{id}/rotate", post(rotate))
        .route("/admin/v1/agents/{id}/revoke", post(revoke))
}

fn error(status: StatusCode, message: &str) -> Response {
    (status, axum::Json(json!({ "error": message }))).into_response()
}

fn bad_agent_id() -> Response {
    error(StatusCode::BAD_REQUEST, "agent id: invalid")
}

/// Replaces every credential of the agent: old API keys and delegation tokens fail from now
/// on; the new API key is in the answer, once.
async fn rotate(State(state): State<HttpState>, Path(id): Path<String>) -> Response {
    let Ok(agent_id) = AgentId::new(id) else {
        return bad_agent_id();
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
    }));
    match state.store.rotate_credentials(new, audit).await {
        Ok((agent, revoked)) => axum::Json(json!({
            "agent_id": agent_id.as_str(),
            "api_key": key.key.expose(),
            "revoked_api_keys": revoked,
            "credential_generation": agent.credential_generation,
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
