//! Who may use the approval routes: the admin (admin token), or an approver signing each
//! request with their own key (see [`clawfirst_core::approval::request`]).
//!
//! An approver reaches only the pending approvals and their own decisions; the admin token
//! reaches those and the rest of the admin API. An agent credential is neither, so it gets a
//! 401 here as everywhere outside `/mcp`.
//!
//! # Security
//!
//! A refusal is a plain 401, logged and audited with the method (`admin_token` or
//! `approver_signature`) and reason, never with the header. A removed approver's signature is
//! refused like an unknown one.

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use clawfirst_core::approval::request::{ApproverAuthorization, SCHEME};
use clawfirst_core::now_ms;
use clawfirst_store::ApproverStatus;

use super::{AdminRefusal, HttpState, admin_token_matches, refuse};

/// Who made a request on the approval routes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Caller {
    /// The holder of the admin token.
    Admin,
    /// A registered, active approver, by name, who signed the request.
    Approver(String),
}

const METHOD: &str = "approver_signature";

/// Admits the admin token or an approver's signed request, and records which in the request.
pub(super) async fn authenticate_approver_or_admin(
    State(state): State<HttpState>,
    mut request: Request,
    next: Next,
) -> Response {
    let authorization = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let signed = authorization.as_deref().filter(|v| {
        v.strip_prefix(SCHEME)
            .is_some_and(|rest| rest.starts_with(' '))
    });
    let method = request.method().as_str().to_owned();
    let target = request
        .uri()
        .path_and_query()
        .map_or_else(|| request.uri().path(), |pq| pq.as_str())
        .to_owned();
    let caller = match signed {
        Some(value) => match approver(&state, &method, &target, value).await {
            Ok(name) => Caller::Approver(name),
            Err(Some(reason)) => return refuse(&state.store, METHOD, reason).await,
            Err(None) => {
                return (StatusCode::SERVICE_UNAVAILABLE, "storage unavailable").into_response();
            }
        },
        None => match admin_token_matches(&state, request.headers()) {
            Ok(()) => Caller::Admin,
            Err(AdminRefusal::Disabled) => {
                return (StatusCode::NOT_FOUND, "admin API disabled").into_response();
            }
            Err(AdminRefusal::Refused(reason)) => {
                return refuse(&state.store, "admin_token", reason).await;
            }
        },
    };
    request.extensions_mut().insert(caller);
    next.run(request).await
}

/// The approver who signed this request; `Err(Some(reason))` refuses it, `Err(None)` means
/// the store could not be asked.
async fn approver(
    state: &HttpState,
    method: &str,
    target: &str,
    header_value: &str,
) -> Result<String, Option<&'static str>> {
    let auth = ApproverAuthorization::parse(header_value).map_err(|e| Some(e.reason()))?;
    let record = match state.store.approver(&auth.name).await {
        Ok(Some(record)) if record.status == ApproverStatus::Active => record,
        Ok(_) => return Err(Some("unknown_approver")),
        Err(_) => return Err(None),
    };
    auth.verify(&record.public_key, method, target, now_ms())
        .map_err(|e| Some(e.reason()))?;
    Ok(auth.name)
}
