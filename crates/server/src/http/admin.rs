//! The admin API's operator views and agent management, under `/admin/v1`.
//!
//! Every route here sits behind the admin-token check of the parent module.

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use clawfirst_core::{AgentId, SessionId};
use clawfirst_store::{AuditEvent, NewApiKey};
use serde::Deserialize;
use serde_json::json;

use super::HttpState;
use crate::api_key;

/// The admin routes.
pub(super) fn routes() -> Router<HttpState> {
    Router::new()
        .route("/admin/v1/status", get(admin_status))
        .route("/admin/v1/sessions", get(admin_sessions))
        .route("/admin/v1/sessions/{id}", get(admin_session))
        .route("/admin/v1/audit", get(admin_audit))
        .route("/admin/v1/agents", get(admin_agents).post(admin_add_agent))
}

#[derive(Deserialize)]
struct ListQuery {
    limit: Option<usize>,
    agent: Option<String>,
}

async fn admin_status(State(state): State<HttpState>) -> Response {
    let agents = state
        .store
        .list_agents()
        .await
        .map(|a| a.len())
        .unwrap_or(0);
    axum::Json(json!({
        "network": state.payments.ledger().network().to_string(),
        "agents": agents,
        "version": env!("CARGO_PKG_VERSION"),
    }))
    .into_response()
}

async fn admin_sessions(State(state): State<HttpState>, Query(q): Query<ListQuery>) -> Response {
    let agent = match q.agent.map(AgentId::new).transpose() {
        Ok(a) => a,
        Err(e) => return (StatusCode::BAD_REQUEST, e.to_string()).into_response(),
    };
    match state
        .store
        .list_sessions(agent.as_ref(), q.limit.unwrap_or(50).min(1000))
        .await
    {
        Ok(sessions) => {
            let items: Vec<_> = sessions.iter().map(crate::admin_view::session).collect();
            axum::Json(json!({ "sessions": items })).into_response()
        }
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, "storage unavailable").into_response(),
    }
}

async fn admin_session(State(state): State<HttpState>, Path(id): Path<String>) -> Response {
    let Ok(id) = SessionId::new(id) else {
        return (StatusCode::BAD_REQUEST, "invalid session id").into_response();
    };
    match state.store.session(&id).await {
        Ok(Some(s)) => {
            let audit = state.store.audit_for_session(&id).await.unwrap_or_default();
            let audit: Vec<_> = audit.iter().map(crate::admin_view::audit).collect();
            axum::Json(json!({ "session": crate::admin_view::session(&s), "audit": audit }))
                .into_response()
        }
        Ok(None) => (StatusCode::NOT_FOUND, "no such session").into_response(),
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, "storage unavailable").into_response(),
    }
}

async fn admin_audit(State(state): State<HttpState>, Query(q): Query<ListQuery>) -> Response {
    match state
        .store
        .audit_tail(q.limit.unwrap_or(100).min(10_000))
        .await
    {
        Ok(records) => {
            let items: Vec<_> = records.iter().map(crate::admin_view::audit).collect();
            axum::Json(json!({ "records": items })).into_response()
        }
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, "storage unavailable").into_response(),
    }
}

async fn admin_agents(State(state): State<HttpState>) -> Response {
    match state.store.list_agents().await {
        Ok(agents) => {
            let items: Vec<_> = agents
                .iter()
                .map(|a| {
                    json!({
                        "agent_id": a.agent_id.as_str(),
                        "key_id": a.key_id.as_str(),
                        "status": a.status.to_string(),
                    })
                })
                .collect();
            axum::Json(json!({ "agents": items })).into_response()
        }
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, "storage unavailable").into_response(),
    }
}

#[derive(Deserialize)]
struct NewAgent {
    agent_id: String,
}

/// Creates an agent paying from the default wallet key, and returns its API key once.
async fn admin_add_agent(
    State(state): State<HttpState>,
    axum::Json(body): axum::Json<NewAgent>,
) -> Response {
    let Ok(agent_id) = AgentId::new(body.agent_id) else {
        return (
            StatusCode::BAD_REQUEST,
            axum::Json(
                json!({ "error": "agent_id: must be 1 to 64 letters, digits, '.', '_' or '-'" }),
            ),
        )
            .into_response();
    };
    match state.store.agent(&agent_id).await {
        Ok(None) => {}
        Ok(Some(_)) => {
            return (
                StatusCode::CONFLICT,
                axum::Json(json!({ "error": "agent_id: already exists" })),
            )
                .into_response();
        }
        Err(_) => return (StatusCode::SERVICE_UNAVAILABLE, "storage unavailable").into_response(),
    }
    let key_id = state.payments.default_key_id().clone();
    let key = api_key::generate();
    let created = async {
        let audit = AuditEvent::operator("admin", "agent.created")
            .details(json!({ "agent_id": agent_id.as_str() }));
        state.store.create_agent(&agent_id, &key_id, audit).await?;
        let audit = AuditEvent::operator("admin", "agent.key_issued")
            .details(json!({ "agent_id": agent_id.as_str(), "api_key_id": key.lookup_id }));
        let new = NewApiKey {
            key_id_public: key.lookup_id.clone(),
            agent_id: agent_id.clone(),
            hash: key.hash,
        };
        state.store.add_api_key(new, audit).await
    };
    match created.await {
        Ok(_) => {
            let body = json!({
                "agent_id": agent_id.as_str(),
                "key_id": key_id.as_str(),
                "api_key": key.key.expose(),
            });
            (StatusCode::CREATED, axum::Json(body)).into_response()
        }
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, "storage unavailable").into_response(),
    }
}
