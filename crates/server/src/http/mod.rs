//! The HTTP face: MCP over streamable HTTP at `/mcp`, the admin API under `/admin/v1`, and
//! `/healthz`.
//!
//! Every `/mcp` request must carry an agent credential (`Authorization: Bearer ...` or
//! `X-API-Key`) or come over a TLS connection with a client certificate (see [`crate::tls`]);
//! every `/admin/v1` request the admin token, except that the pending approvals and decisions
//! also admit an approver's signed request (see [`approver_auth`]). Failures get a plain 401
//! and are logged and audited with the reason, never with the credential.

use std::sync::Arc;

use axum::Router;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use clawfirst_auth::delegation::DelegationKey;
use clawfirst_store::{AuditEvent, Store};
use rmcp::transport::streamable_http_server::session::never::NeverSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use serde_json::json;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tokio_util::sync::CancellationToken;
use tracing::info;

use crate::agent_auth::{AgentAuth, Authenticated, Refusal};
use crate::mcp::{AuthenticatedAgent, Identity, McpApp, McpHandler};
use crate::payments::PaymentService;
use crate::tls::TlsPeer;

mod admin;
mod approvals;
pub mod approver_auth;
mod credentials;

/// What the HTTP layer needs.
#[derive(Clone, Debug)]
pub struct HttpState {
    /// Persistence, for credentials and the admin API.
    pub store: Store,
    /// The payment service.
    pub payments: Arc<PaymentService>,
    /// SHA-256 of the admin token, if the admin API is enabled.
    pub admin_token_sha256: Option<[u8; 32]>,
    /// Agent authentication.
    pub auth: Arc<AgentAuth>,
    /// Signs the delegation tokens the admin API issues.
    pub delegation_key: Arc<DelegationKey>,
}

/// Builds the router.
pub fn router(
    state: HttpState,
    app: Arc<McpApp>,
    allowed_hosts: Vec<String>,
    shutdown: CancellationToken,
) -> Router {
    let mcp = mcp_service(app, allowed_hosts, shutdown);
    let mcp_routes = Router::new()
        .nest_service("/mcp", mcp)
        .layer(middleware::from_fn_with_state(
            state.clone(),
            authenticate_agent,
        ));
    let admin_routes = admin::routes()
        .merge(approvals::routes())
        .merge(credentials::routes())
        .layer(middleware::from_fn_with_state(
            state.clone(),
            authenticate_admin,
        ));
    let approver_routes = approvals::approver_routes().layer(middleware::from_fn_with_state(
        state.clone(),
        approver_auth::authenticate_approver_or_admin,
    ));

    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .merge(mcp_routes)
        .merge(admin_routes)
        .merge(approver_routes)
        .with_state(state)
}

/// The MCP endpoint: stateless streamable HTTP with JSON responses, for the agent the request
/// was authenticated as.
fn mcp_service(
    app: Arc<McpApp>,
    allowed_hosts: Vec<String>,
    shutdown: CancellationToken,
) -> StreamableHttpService<McpHandler, NeverSessionManager> {
    let config = StreamableHttpServerConfig::default()
        .with_legacy_session_mode(false)
        .with_json_response(true)
        .with_allowed_hosts(allowed_hosts)
        .with_sse_keep_alive(None)
        .with_cancellation_token(shutdown);
    StreamableHttpService::new(
        move || Ok(McpHandler::new(app.clone(), Identity::HttpAuthenticated)),
        Arc::new(NeverSessionManager::default()),
        config,
    )
}

/// The MCP endpoint with NO authentication: every request acts as `agent`.
///
/// # Security
///
/// Only for measuring what authentication costs (the authentication benchmark's baseline).
/// Never serve it where anything but a benchmark can reach it.
pub fn dangerous_unauthenticated_mcp_router(
    agent: Authenticated,
    app: Arc<McpApp>,
    allowed_hosts: Vec<String>,
    shutdown: CancellationToken,
) -> Router {
    let mcp = mcp_service(app, allowed_hosts, shutdown);
    Router::new()
        .nest_service("/mcp", mcp)
        .layer(middleware::from_fn(
            move |mut request: Request, next: Next| {
                let agent = agent.clone();
                async move {
                    request.extensions_mut().insert(AuthenticatedAgent(agent));
                    next.run(request).await
                }
            },
        ))
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

/// Resolves the agent of the request's credential and attaches it to the request.
async fn authenticate_agent(
    State(state): State<HttpState>,
    mut request: Request,
    next: Next,
) -> Response {
    let presented = bearer(request.headers()).map(str::to_owned);
    let certificate = request
        .extensions()
        .get::<ConnectInfo<TlsPeer>>()
        .and_then(|peer| peer.0.certificate.clone());
    match state
        .auth
        .authenticate(presented.as_deref(), certificate.as_ref())
        .await
    {
        Ok(agent) => {
            request.extensions_mut().insert(AuthenticatedAgent(agent));
            next.run(request).await
        }
        Err(Refusal::Unauthorized { method, reason }) => refuse(&state.store, method, reason).await,
        Err(Refusal::Unavailable) => {
            (StatusCode::SERVICE_UNAVAILABLE, "storage unavailable").into_response()
        }
    }
}

/// Why the admin token check did not pass.
enum AdminRefusal {
    /// No admin token is configured: the admin API does not exist.
    Disabled,
    /// Missing or wrong, with the reason for the audit trail.
    Refused(&'static str),
}

/// Whether the request carries the admin token.
fn admin_token_matches(state: &HttpState, headers: &HeaderMap) -> Result<(), AdminRefusal> {
    let Some(expected) = state.admin_token_sha256 else {
        return Err(AdminRefusal::Disabled);
    };
    let Some(presented) = bearer(headers) else {
        return Err(AdminRefusal::Refused("no credential"));
    };
    let hash: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
    // Constant-time comparison of the SHA-256 hashes.
    if !bool::from(hash.ct_eq(&expected)) {
        return Err(AdminRefusal::Refused("wrong token"));
    }
    Ok(())
}

/// Requires the admin token.
async fn authenticate_admin(
    State(state): State<HttpState>,
    request: Request,
    next: Next,
) -> Response {
    match admin_token_matches(&state, request.headers()) {
        Ok(()) => next.run(request).await,
        Err(AdminRefusal::Disabled) => {
            (StatusCode::NOT_FOUND, "admin API disabled").into_response()
        }
        Err(AdminRefusal::Refused(reason)) => refuse(&state.store, "admin_token", reason).await,
    }
}
