//! The HTTP face: MCP over streamable HTTP at `/mcp`, the admin API under `/admin/v1`, and
//! `/healthz`.
//!
//! Every `/mcp` request must carry an agent API key (`Authorization: Bearer cfk_...` or
//! `X-API-Key`); every `/admin/v1` request the admin token. Failures get a plain 401 and are
//! logged and audited with the reason, never with the credential.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use clawfirst_core::{AgentId, SessionId};
use clawfirst_store::NewApiKey;
use clawfirst_store::{AgentStatus, AuditEvent, Store};
use rmcp::transport::streamable_http_server::session::never::NeverSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use serde::Deserialize;
use serde_json::json;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tokio_util::sync::CancellationToken;
use tracing::info;

use crate::api_key;
use crate::mcp::{AuthenticatedAgent, Identity, McpApp, McpHandler};
use crate::payments::PaymentService;

/// What the HTTP layer needs.
#[derive(Clone, Debug)]
pub struct HttpState {
    /// Persistence, for credentials and the admin API.
    pub store: Store,
    /// The payment service.
    pub payments: Arc<PaymentService>,
    /// SHA-256 of the admin token, if the admin API is enabled.
    pub admin_token_sha256: Option<[u8; 32]>,
}

/// Builds the router.
pub fn router(
    state: HttpState,
    app: Arc<McpApp>,
    allowed_hosts: Vec<String>,
    shutdown: CancellationToken,
) -> Router {
    let config = StreamableHttpServerConfig::default()
        .with_legacy_session_mode(false)
        .with_json_response(true)
        .with_allowed_hosts(allowed_hosts)
        .with_sse_keep_alive(None)
        .with_cancellation_token(shutdown);
    let mcp = StreamableHttpService::new(
        move || Ok(McpHandler::new(app.clone(), Identity::HttpAuthenticated)),
        Arc::new(NeverSessionManager::default()),
        config,
    );

    let mcp_routes = Router::new()
        .nest_service("/mcp", mcp)
        .layer(middleware::from_fn_with_state(
            state.clone(),
            authenticate_agent,
        ));
    let admin_routes = Router::new()
        .route("/admin/v1/status", get(admin_status))
        .route("/admin/v1/sessions", get(admin_sessions))
        .route("/admin/v1/sessions/{id}", get(admin_session))
        .route("/admin/v1/audit", get(admin_audit))
        .route("/admin/v1/agents", get(admin_agents).post(admin_add_agent))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            authenticate_admin,
        ));

    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .merge(mcp_routes)
        .merge(admin_routes)
        .with_state(state)
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    if let Some(v) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        return v.strip_prefix("Bearer ").map(str::trim);
    }
    headers
        .get("x-api-key")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
}

fn unauthorized() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        axum::Json(json!({ "error": "unauthorized" })),
    )
        .into_response()
}

async fn refuse(store: &Store, method: &str, reason: &str) -> Response {
    info!(
        auth.method = method,
        auth.reason = reason,
        "authentication failed"
    );
    let audit =
        AuditEvent::system("auth.failed").details(json!({ "method": method, "reason": reason }));
    // The refusal stands whether or not the record is written.
    let _ = store.append_audit(audit).await;
    unauthorized()
}

/// Resolves the agent of an API key and attaches it to the request.
async fn authenticate_agent(
    State(state): State<HttpState>,
    mut request: Request,
    next: Next,
) -> Response {
    let Some(presented) = bearer(request.headers()).map(str::to_owned) else {
        return refuse(&state.store, "api_key", "no credential").await;
    };
    let Some(lookup) = api_key::lookup_id(&presented) else {
        return refuse(&state.store, "api_key", "malformed key").await;
    };
    let record = match state.store.api_key(lookup).await {
        Ok(Some(record)) => record,
        Ok(None) => return refuse(&state.store, "api_key", "unknown key").await,
        Err(_) => return (StatusCode::SERVICE_UNAVAILABLE, "storage unavailable").into_response(),
    };
    // Constant-time comparison of the SHA-256 hashes.
    if !api_key::matches(&presented, &record.hash) {
        return refuse(&state.store, "api_key", "wrong secret").await;
    }
    if record.revoked_at_ms.is_some() {
        return refuse(&state.store, "api_key", "revoked key").await;
    }
    match state.store.agent(&record.agent_id).await {
        Ok(Some(agent)) if agent.status != AgentStatus::Revoked => {}
        Ok(_) => return refuse(&state.store, "api_key", "agent revoked").await,
        Err(_) => return (StatusCode::SERVICE_UNAVAILABLE, "storage unavailable").into_response(),
    }
    request
        .extensions_mut()
        .insert(AuthenticatedAgent(record.agent_id));
    next.run(request).await
}

/// Requires the admin token.
async fn authenticate_admin(
    State(state): State<HttpState>,
    request: Request,
    next: Next,
) -> Response {
    let Some(expected) = state.admin_token_sha256 else {
        return (StatusCode::NOT_FOUND, "admin API disabled").into_response();
    };
    let Some(presented) = bearer(request.headers()) else {
        return refuse(&state.store, "admin_token", "no credential").await;
    };
    let hash: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
    // Constant-time comparison of the SHA-256 hashes.
    if !bool::from(hash.ct_eq(&expected)) {
        return refuse(&state.store, "admin_token", "wrong token").await;
    }
    next.run(request).await
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
