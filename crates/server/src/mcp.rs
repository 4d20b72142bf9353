//! The MCP face of the payment service: tool listing, dispatch and the response envelopes.
//!
//! One [`McpHandler`] serves both transports. Over HTTP the caller is the agent the
//! authentication layer attached to the request; over stdio it is the agent named in the
//! configuration (local trust: whoever can start the process is that agent).
//!
//! Every call is recorded in the audit trail before it runs (tool, agent, SHA-256 of the
//! arguments); if that record cannot be written the call does not run.

use std::sync::Arc;

use clawfirst_core::{AgentId, now_ms};
use clawfirst_store::AuditEvent;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, Implementation,
    ListToolsResult, PaginatedRequestParams, ServerCapabilities, ServerConfig, Tool,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData as McpError, RoleServer, ServerHandler};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tracing::{debug, info};

use crate::error::{ErrorCode, ToolError};
use crate::payments::{Caller, PaymentService, ToolResult};
use crate::rate_limit::{AgentRateLimits, RateLimiter, RateLimits, RateStatus};
use crate::tools::input;
use crate::tools::schema::{ToolKind, ToolNaming};

/// The agent an HTTP request was authenticated as; inserted by the authentication layer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthenticatedAgent(pub crate::agent_auth::Authenticated);

/// Where the caller's identity comes from.
#[derive(Clone, Debug)]
pub enum Identity {
    /// From [`AuthenticatedAgent`] in the HTTP request.
    HttpAuthenticated,
    /// A fixed agent, for the stdio transport.
    Configured(AgentId),
}

/// Shared state of every MCP connection.
#[derive(Debug)]
pub struct McpApp {
    payments: Arc<PaymentService>,
    naming: ToolNaming,
    limits: RateLimits,
    calls: RateLimiter,
    payments_started: RateLimiter,
    tools: Vec<Tool>,
}

impl McpApp {
    /// The MCP application over a payment service.
    pub fn new(payments: Arc<PaymentService>, naming: ToolNaming, limits: RateLimits) -> Self {
        let tools = ToolKind::ALL.iter().map(|k| k.definition(naming)).collect();
        Self {
            payments,
            naming,
            limits,
            calls: RateLimiter::new(),
            payments_started: RateLimiter::new(),
            tools,
        }
    }
}

/// The rmcp server handler.
#[derive(Clone, Debug)]
pub struct McpHandler {
    app: Arc<McpApp>,
    identity: Identity,
}

impl McpHandler {
    /// A handler with the given identity source.
    pub fn new(app: Arc<McpApp>, identity: Identity) -> Self {
        Self { app, identity }
    }

    fn caller(&self, context: &RequestContext<RoleServer>) -> Option<Caller> {
        match &self.identity {
            Identity::Configured(id) => Some(Caller::agent(id.clone())),
            Identity::HttpAuthenticated => context
                .extensions
                .get::<axum::http::request::Parts>()
                .and_then(|p| p.extensions.get::<AuthenticatedAgent>())
                .map(|a| Caller {
                    agent_id: a.0.agent_id.clone(),
                    delegated_limits: a.0.delegated_limits.clone(),
                }),
        }
    }

    /// Runs one tool for a caller and renders the envelope.
    pub async fn call(
        &self,
        caller: &Caller,
        name: &str,
        args: Option<&rmcp::model::JsonObject>,
    ) -> Option<CallToolResult> {
        let kind = ToolKind::from_name(name, self.app.naming)?;
        let now = now_ms();

        // 1. Rate limits.
        let limits = self.app.limits.for_agent(&caller.agent_id);
        let rate = self
            .app
            .calls
            .check(&caller.agent_id, limits.tool_calls_per_minute, now);
        if !rate.allowed {
            let err = rate_limited(
                "tool_calls_per_minute",
                "too many tool calls; retry later",
                rate.limit,
                rate.retry_after_s(now),
            );
            return Some(failure(&err, now));
        }
        if kind == ToolKind::InitializePayment
            && let Err(err) = self.admit_payment(caller, limits, now).await
        {
            return Some(failure(&err, now));
        }

        // 2. Audit the call before it runs.
        let digest = Sha256::digest(serde_json::to_vec(&args).unwrap_or_default());
        let audit = AuditEvent::agent(&caller.agent_id, format!("tool.{}", kind.base_name()))
            .details(json!({ "arguments_sha256": hex::encode(digest) }));
        if let Err(e) = self.app.payments.store().append_audit(audit).await {
            let err = crate::payments::internal("audit tool call", &e);
            return Some(failure(&err, now));
        }

        // 3. Run it.
        let result = self.dispatch(kind, caller, args).await;
        Some(match result {
            Ok(value) => {
                debug!(agent.id = %caller.agent_id, tool = kind.base_name(), "tool succeeded");
                success(value, rate)
            }
            Err(err) => {
                info!(
                    agent.id = %caller.agent_id,
                    tool = kind.base_name(),
                    error.code = %err.code,
                    "tool failed"
                );
                failure(&err, now_ms())
            }
        })
    }

    /// The limits that apply to starting a payment: open sessions (checked first, so a refusal
    /// there does not use up the minute's payments), then payments per minute.
    async fn admit_payment(
        &self,
        caller: &Caller,
        limits: AgentRateLimits,
        now: u64,
    ) -> Result<(), ToolError> {
        let open = self
            .app
            .payments
            .store()
            .open_session_count(&caller.agent_id)
            .await
            .map_err(|e| crate::payments::internal("count open sessions", &e))?;
        if open >= u64::from(limits.open_sessions) {
            return Err(rate_limited(
                "open_sessions",
                "too many payment sessions are open; finish or cancel one first",
                limits.open_sessions,
                OPEN_SESSIONS_RETRY_AFTER_S,
            ));
        }
        let started =
            self.app
                .payments_started
                .check(&caller.agent_id, limits.payments_per_minute, now);
        if !started.allowed {
            return Err(rate_limited(
                "payments_per_minute",
                "too many payments started this minute; retry later",
                started.limit,
                started.retry_after_s(now),
            ));
        }
        Ok(())
    }

    async fn dispatch(
        &self,
        kind: ToolKind,
        caller: &Caller,
        args: Option<&rmcp::model::JsonObject>,
    ) -> ToolResult {
        let p = &self.app.payments;
        match kind {
            ToolKind::InitializePayment => {
                p.initialize_payment(caller, input::initialize_payment(args)?)
                    .await
            }
            ToolKind::AuthorizeTransaction => {
                p.authorize_transaction(caller, &input::session_only(args)?)
                    .await
            }
            ToolKind::VerifySettlement => {
                let (id, commitment) = input::session_with_commitment(args)?;
                p.verify_settlement(caller, &id, commitment).await
            }
            ToolKind::QueryBalance => p.query_balance(caller, input::query_balance(args)?).await,
            ToolKind::EstimateFees => p.estimate_fees(caller, input::estimate_fees(args)?).await,
            ToolKind::CancelPayment => p.cancel_payment(caller, &input::session_only(args)?).await,
        }
    }
}

/// How long an agent at its open-sessions limit is told to wait: sessions end as payments
/// settle, typically within seconds.
const OPEN_SESSIONS_RETRY_AFTER_S: u64 = 5;

/// A refusal by one of the rate limits, naming it.
fn rate_limited(limit_name: &str, message: &str, limit: u32, retry_after_s: u64) -> ToolError {
    info!(rate_limit = limit_name, "rate limit exceeded");
    ToolError::new(ErrorCode::RateLimitExceeded, message)
        .with_details(json!({
            "retry_after": retry_after_s,
            "limit": limit,
            "limit_name": limit_name,
        }))
        .retryable()
}

fn success(result: Value, rate: RateStatus) -> CallToolResult {
    let envelope = json!({
        "success": true,
        "result": result,
        "rate_limit": {
            "limit": rate.limit,
            "remaining": rate.remaining,
            "reset_at": rate.reset_at_ms,
        },
    });
    let mut out = CallToolResult::success(vec![ContentBlock::text(envelope.to_string())]);
    out.structured_content = Some(envelope);
    out
}

fn failure(err: &ToolError, now: u64) -> CallToolResult {
    let envelope = err.envelope(now);
    let mut out = CallToolResult::error(vec![ContentBlock::text(envelope.to_string())]);
    out.structured_content = Some(envelope);
    out
}

impl ServerHandler for McpHandler {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("clawfirst", env!("CARGO_PKG_VERSION")))
            .with_instructions(
                "ClawFirst pays on Solana for you without giving you a key. Create a session \
                 with initialize_payment, then authorize_transaction, then verify_settlement.",
            )
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, McpError> {
        Ok(ListToolsResult {
            tools: self.app.tools.clone(),
            ..ListToolsResult::default()
        })
    }

    fn get_tool(&self, name: &str) -> Option<Tool> {
        self.app.tools.iter().find(|t| t.name == name).cloned()
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        let Some(caller) = self.caller(&context) else {
            let err = ToolError::new(ErrorCode::Unauthorized, "not authenticated");
            return Ok(failure(&err, now_ms()).into());
        };
        match self
            .call(&caller, &request.name, request.arguments.as_ref())
            .await
        {
            Some(result) => Ok(result.into()),
            None => Err(McpError::invalid_params(
                format!(
                    "unknown tool {:?}",
                    request.name.chars().take(64).collect::<String>()
                ),
                None,
            )),
        }
    }
}
