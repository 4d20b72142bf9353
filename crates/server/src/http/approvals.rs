//! The admin API's approval layer: approvers, pending approvals and decisions, and the
//! policy in force.
//!
//! The approvers and policy routes sit behind the admin-token check of the parent module; the
//! pending approvals and decisions ([`approver_routes`]) behind the admin token or an
//! approver's signed request ([`super::approver_auth`]). An agent's credential is refused
//! before any handler runs. A decision additionally carries the approver's own signature over
//! the payment, checked by [`crate::payments::PaymentService::vote`]: holding the admin token
//! is not enough to approve a payment, and an approver signed in decides only for themself.

use axum::Router;
use axum::extract::{Extension, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use clawfirst_core::approval::SignedApproval;
use clawfirst_core::{Address, SessionId};
use clawfirst_store::{AuditEvent, StoreError};
use serde::Deserialize;
use serde_json::json;

use super::HttpState;
use super::approver_auth::Caller;
use crate::policy_reload::ReloadOutcome;

/// The approval-layer routes for the admin only.
pub(super) fn routes() -> Router<HttpState> {
    Router::new()
        .route(
            "/admin/v1/approvers",
            get(list_approvers).post(add_approver),
        )
        .route("/admin/v1/policy", get(policy))
        .route("/admin/v1/policy/reload", post(reload_policy))
        .route("/admin/v1/policy/explain", post(explain))
}

/// The routes approvers use: pending approvals and decisions.
pub(super) fn approver_routes() -> Router<HttpState> {
    Router::new()
        .route("/admin/v1/approvals", get(list_approvals))
        .route("/admin/v1/approvals/{id}", get(approval))
        .route("/admin/v1/approvals/{id}/decisions", post(decide))
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, axum::Json(json!({ "error": message.into() }))).into_response()
}

fn unavailable() -> Response {
    error(StatusCode::SERVICE_UNAVAILABLE, "storage unavailable")
}

async fn list_approvers(State(state): State<HttpState>) -> Response {
    match state.store.approvers().await {
        Ok(list) => {
            let items: Vec<_> = list
                .iter()
                .map(|a| {
                    json!({
                        "name": a.name,
                        "public_key": a.public_key.to_string(),
                        "status": a.status.to_string(),
                    })
                })
                .collect();
            axum::Json(json!({ "approvers": items })).into_response()
        }
        Err(_) => unavailable(),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewApprover {
    name: String,
    public_key: String,
}

async fn add_approver(
    State(state): State<HttpState>,
    axum::Json(body): axum::Json<NewApprover>,
) -> Response {
    let Ok(public_key) = Address::parse(&body.public_key) else {
        return error(
            StatusCode::BAD_REQUEST,
            "public_key: must be a base58 Ed25519 public key",
        );
    };
    let audit = AuditEvent::operator("admin", "approver.added")
        .details(json!({ "name": body.name, "public_key": public_key.to_string() }));
    match state
        .store
        .add_approver(&body.name, public_key, audit)
        .await
    {
        Ok(record) => (
            StatusCode::CREATED,
            axum::Json(json!({
                "name": record.name,
                "public_key": record.public_key.to_string(),
                "status": "active",
            })),
        )
            .into_response(),
        Err(e @ StoreError::InvalidApproverName) => {
            error(StatusCode::BAD_REQUEST, format!("name: {e}"))
        }
        Err(e @ (StoreError::ApproverExists(_) | StoreError::ApproverKeyInUse { .. })) => {
            error(StatusCode::CONFLICT, e.to_string())
        }
        Err(_) => unavailable(),
    }
}

#[derive(Deserialize)]
struct Limit {
    limit: Option<usize>,
}

async fn list_approvals(State(state): State<HttpState>, Query(q): Query<Limit>) -> Response {
    match state
        .payments
        .pending_approvals(q.limit.unwrap_or(100).min(1000))
        .await
    {
        Ok(items) => axum::Json(json!({ "approvals": items })).into_response(),
        Err(_) => unavailable(),
    }
}

async fn approval(State(state): State<HttpState>, Path(id): Path<String>) -> Response {
    let Ok(id) = SessionId::new(id) else {
        return error(StatusCode::BAD_REQUEST, "invalid session id");
    };
    match state.payments.approval(&id).await {
        Ok(Some(view)) => axum::Json(view).into_response(),
        Ok(None) => error(StatusCode::NOT_FOUND, "no such session"),
        Err(_) => unavailable(),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DecisionBody {
    approver: String,
    statement: String,
    signature: String,
    reason: Option<String>,
}

/// Largest reason accepted with a decision, in bytes.
const MAX_REASON_BYTES: usize = 500;

async fn decide(
    State(state): State<HttpState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    axum::Json(body): axum::Json<DecisionBody>,
) -> Response {
    let Ok(id) = SessionId::new(id) else {
        return error(StatusCode::BAD_REQUEST, "invalid session id");
    };
    if let Caller::Approver(name) = &caller
        && *name != body.approver
    {
        return error(
            StatusCode::FORBIDDEN,
            "an approver signed in decides only for themself",
        );
    }
    if body
        .reason
        .as_ref()
        .is_some_and(|r| r.len() > MAX_REASON_BYTES)
    {
        return error(StatusCode::BAD_REQUEST, "reason: at most 500 bytes");
    }
    let signed = SignedApproval {
        statement: body.statement,
        signature: body.signature,
    };
    match state
        .payments
        .vote(&id, &body.approver, signed, body.reason)
        .await
    {
        Ok(view) => axum::Json(view).into_response(),
        Err(e) => {
            let status =
                StatusCode::from_u16(e.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            error(status, e.to_string())
        }
    }
}

async fn policy(State(state): State<HttpState>) -> Response {
    let handle = state.payments.policy();
    let current = handle.current();
    axum::Json(json!({
        "version": current.version().to_string(),
        "version_sha256": current.version().to_hex(),
        "file": handle.source().map(|p| p.display().to_string()),
    }))
    .into_response()
}

async fn reload_policy(State(state): State<HttpState>) -> Response {
    let handle = state.payments.policy();
    let actor = AuditEvent::operator("admin", "policy.reload");
    match handle.reload(&state.store, actor).await {
        Ok(ReloadOutcome::Unchanged { version }) => {
            axum::Json(json!({ "outcome": "unchanged", "version": version })).into_response()
        }
        Ok(ReloadOutcome::Applied {
            previous,
            version,
            warnings,
        }) => axum::Json(json!({
            "outcome": "applied",
            "previous": previous,
            "version": version,
            "warnings": warnings,
        }))
        .into_response(),
        Err(message) => error(StatusCode::UNPROCESSABLE_ENTITY, message),
    }
}

async fn explain(
    State(state): State<HttpState>,
    axum::Json(body): axum::Json<crate::payments::ExplainRequest>,
) -> Response {
    match state.payments.explain(body).await {
        Ok(view) => axum::Json(view).into_response(),
        Err(e) => error(StatusCode::BAD_REQUEST, e.message),
    }
}
