//! The agent-facing error vocabulary and the one place internal failures become what an agent
//! sees.
//!
//! Every tool failure is a [`ToolError`]: a code from [`ErrorCode`], a message an agent can act
//! on, structured details and whether retrying can help. [`ToolError::envelope`] renders the
//! failure envelope of the MCP tools; nothing else in the server builds one.
//!
//! # Security
//!
//! Signing and authentication failures reach the agent as a code and a vague message; the
//! precise reason goes to the log and the audit trail only.

use std::fmt;

use serde::Serialize;
use serde_json::{Value, json};

/// The error codes of the agent-facing tools.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[non_exhaustive]
pub enum ErrorCode {
    /// The agent's wallet is missing or unusable.
    InvalidWallet,
    /// The signer refused or failed; nothing was sent.
    SignatureFailed,
    /// Policy denied the payment; the details name the rule.
    PolicyViolation,
    /// A human approval did not arrive in time.
    ApprovalTimeout,
    /// The wallet cannot cover the amount and fees.
    InsufficientBalance,
    /// The session expired before it was submitted.
    SessionExpired,
    /// The ledger rejected or failed the transaction.
    TransactionFailed,
    /// The ledger could not be reached; the outcome may be unknown.
    NetworkError,
    /// The ledger answered with an error.
    RpcError,
    /// Too many requests; `retry_after` says when to try again.
    RateLimitExceeded,
    /// The input failed the schema or a parse; the details name the field.
    InvalidInput,
    /// No such session for this agent.
    SessionNotFound,
    /// The session is not in a state that allows the operation.
    InvalidState,
    /// The agent is suspended.
    AgentSuspended,
    /// The agent's circuit breaker is open.
    CircuitOpen,
    /// The payment waits for human approval (not a failure for the agent).
    ApprovalRequired,
    /// The caller is not authenticated or not allowed.
    Unauthorized,
    /// An internal failure; nothing was signed.
    InternalError,
}

impl ErrorCode {
    /// The code as it appears on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidWallet => "INVALID_WALLET",
            ErrorCode::SignatureFailed => "SIGNATURE_FAILED",
            ErrorCode::PolicyViolation => "POLICY_VIOLATION",
            ErrorCode::ApprovalTimeout => "APPROVAL_TIMEOUT",
            ErrorCode::InsufficientBalance => "INSUFFICIENT_BALANCE",
            ErrorCode::SessionExpired => "SESSION_EXPIRED",
            ErrorCode::TransactionFailed => "TRANSACTION_FAILED",
            ErrorCode::NetworkError => "NETWORK_ERROR",
            ErrorCode::RpcError => "RPC_ERROR",
            ErrorCode::RateLimitExceeded => "RATE_LIMIT_EXCEEDED",
            ErrorCode::InvalidInput => "INVALID_INPUT",
            ErrorCode::SessionNotFound => "SESSION_NOT_FOUND",
            ErrorCode::InvalidState => "INVALID_STATE",
            ErrorCode::AgentSuspended => "AGENT_SUSPENDED",
            ErrorCode::CircuitOpen => "CIRCUIT_OPEN",
            ErrorCode::ApprovalRequired => "APPROVAL_REQUIRED",
            ErrorCode::Unauthorized => "UNAUTHORIZED",
            ErrorCode::InternalError => "INTERNAL_ERROR",
        }
    }

    /// Every code, for the output schema.
    pub const ALL: [ErrorCode; 18] = [
        ErrorCode::InvalidWallet,
        ErrorCode::SignatureFailed,
        ErrorCode::PolicyViolation,
        ErrorCode::ApprovalTimeout,
        ErrorCode::InsufficientBalance,
        ErrorCode::SessionExpired,
        ErrorCode::TransactionFailed,
        ErrorCode::NetworkError,
        ErrorCode::RpcError,
        ErrorCode::RateLimitExceeded,
        ErrorCode::InvalidInput,
        ErrorCode::SessionNotFound,
        ErrorCode::InvalidState,
        ErrorCode::AgentSuspended,
        ErrorCode::CircuitOpen,
        ErrorCode::ApprovalRequired,
        ErrorCode::Unauthorized,
        ErrorCode::InternalError,
    ];
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A tool failure as the agent sees it.
#[derive(Clone, Debug, PartialEq)]
pub struct ToolError {
    /// The code.
    pub code: ErrorCode,
    /// What happened and, where possible, what to do.
    pub message: String,
    /// Structured facts: the field at fault, the rule that denied, the current state.
    pub details: Value,
    /// Whether the same call may succeed later.
    pub retryable: bool,
}

impl ToolError {
    /// A failure with empty details.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            details: json!({}),
            retryable: false,
        }
    }

    /// Invalid input in `field`.
    pub fn invalid_input(field: &str, message: impl fmt::Display) -> Self {
        let message = message.to_string();
        let text = if message.starts_with(field) {
            message
        } else {
            format!("{field}: {message}")
        };
        Self::new(ErrorCode::InvalidInput, text).with_details(json!({ "field": field }))
    }

    /// Replaces the details.
    pub fn with_details(mut self, details: Value) -> Self {
        self.details = details;
        self
    }

    /// Marks the failure as retryable.
    pub fn retryable(mut self) -> Self {
        self.retryable = true;
        self
    }

    /// An internal failure; the cause is logged by the caller, never shown.
    pub fn internal() -> Self {
        Self::new(
            ErrorCode::InternalError,
            "internal error; nothing was signed",
        )
        .retryable()
    }

    /// The failure envelope: `{"success": false, "error": {...}, "timestamp": ms}`.
    pub fn envelope(&self, timestamp_ms: u64) -> Value {
        json!({
            "success": false,
            "error": {
                "code": self.code.as_str(),
                "message": self.message,
                "details": self.details,
                "retryable": self.retryable,
            },
            "timestamp": timestamp_ms,
        })
    }
}

impl fmt::Display for ToolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for ToolError {}
