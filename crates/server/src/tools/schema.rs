//! Names, descriptions, input schemas and output schemas of the six agent-facing tools.
//!
//! The input schema of `x402.initialize_payment` is the product's published contract; change
//! it only with the specification.

use std::sync::Arc;

use rmcp::model::{JsonObject, Tool, ToolAnnotations};
use serde_json::{Value, json};

use crate::error::ErrorCode;

/// How tool names are spelled on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ToolNaming {
    /// `x402.initialize_payment` (the default).
    #[default]
    Dotted,
    /// `x402_initialize_payment`, for clients that refuse dots in tool names.
    Underscore,
}

/// The six tools.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ToolKind {
    /// Create a payment session.
    InitializePayment,
    /// Approve, sign and submit a session's transaction.
    AuthorizeTransaction,
    /// Report settlement.
    VerifySettlement,
    /// Wallet balances.
    QueryBalance,
    /// Fee estimate.
    EstimateFees,
    /// Abort a session.
    CancelPayment,
}

impl ToolKind {
    /// Every tool, in listing order.
    pub const ALL: [ToolKind; 6] = [
        ToolKind::InitializePayment,
        ToolKind::AuthorizeTransaction,
        ToolKind::VerifySettlement,
        ToolKind::QueryBalance,
        ToolKind::EstimateFees,
        ToolKind::CancelPayment,
    ];

    /// The name without the `x402` namespace.
    pub const fn base_name(self) -> &'static str {
        match self {
            ToolKind::InitializePayment => "initialize_payment",
            ToolKind::AuthorizeTransaction => "authorize_transaction",
            ToolKind::VerifySettlement => "verify_settlement",
            ToolKind::QueryBalance => "query_balance",
            ToolKind::EstimateFees => "estimate_fees",
            ToolKind::CancelPayment => "cancel_payment",
        }
    }

    /// The wire name under a naming style.
    pub fn name(self, naming: ToolNaming) -> String {
        let sep = match naming {
            ToolNaming::Dotted => '.',
            ToolNaming::Underscore => '_',
        };
        format!("x402{sep}{}", self.base_name())
    }

    /// Looks a wire name up.
    pub fn from_name(name: &str, naming: ToolNaming) -> Option<ToolKind> {
        ToolKind::ALL.into_iter().find(|k| k.name(naming) == name)
    }

    /// The MCP tool definition.
    pub fn definition(self, naming: ToolNaming) -> Tool {
        let (description, input, result, annotations) = match self {
            ToolKind::InitializePayment => (
                "Create a payment session from an intent: an amount such as \"2.5 USDC\" and a \
                 recipient (a Solana address or a payee e-mail). Nothing is signed yet.",
                initialize_input(),
                session_result(),
                ToolAnnotations::new()
                    .read_only(false)
                    .destructive(false)
                    .idempotent(true),
            ),
            ToolKind::AuthorizeTransaction => (
                "Run the approval layer on a session, then have the payment signed by the \
                 separate signer and submitted to the ledger.",
                session_input(false),
                session_result(),
                ToolAnnotations::new()
                    .read_only(false)
                    .destructive(true)
                    .idempotent(true),
            ),
            ToolKind::VerifySettlement => (
                "Report where a payment stands, up to finality on the ledger.",
                session_input(true),
                session_result(),
                ToolAnnotations::new().read_only(true),
            ),
            ToolKind::QueryBalance => (
                "The agent wallet's balances in SOL, USDC and BONK.",
                balance_input(),
                balance_result(),
                ToolAnnotations::new().read_only(true),
            ),
            ToolKind::EstimateFees => (
                "Estimate the cost of a payment before making it: base fee, priority fee and \
                 rent for a new token account, in lamports.",
                estimate_input(),
                estimate_result(),
                ToolAnnotations::new().read_only(true),
            ),
            ToolKind::CancelPayment => (
                "Abort a session that has not been submitted, releasing any reserved budget.",
                session_input(false),
                session_result(),
                ToolAnnotations::new()
                    .read_only(false)
                    .destructive(false)
                    .idempotent(true),
            ),
        };
        Tool::new(self.name(naming), description, Arc::new(object(input)))
            .with_raw_output_schema(Arc::new(object(output_schema(result))))
            .with_annotations(annotations)
    }
}

fn object(value: Value) -> JsonObject {
    match value {
        Value::Object(map) => map,
        _ => JsonObject::new(),
    }
}

/// The `amount` pattern of the specification.
pub const AMOUNT_PATTERN: &str = r"^\d+(\.\d+)?\s+(SOL|USDC|BONK)$";

fn initialize_input() -> Value {
    json!({
        "type": "object",
        "properties": {
            "amount": {
                "type": "string",
                "pattern": AMOUNT_PATTERN,
                "description": concat!(
                    "A decimal number, whitespace, then SOL, USDC or BONK, e.g. \"2.5 USDC\". ",
                    "At most 9 decimals for SOL, 6 for USDC, 5 for BONK."
                )
            },
            "recipient": {
                "type": "string",
                "minLength": 3,
                "maxLength": 254,
                "description": concat!(
                    "A base58 Solana address (32 to 44 characters) or an e-mail address listed ",
                    "in the operator's payee directory."
                )
            },
            "purpose": {
                "type": "string",
                "maxLength": 500,
                "description": "Why the payment is made; kept in the audit trail."
            },
            "settlement_constraint": {
                "type": "string",
                "enum": ["immediate", "defer_until_approval", "scheduled"],
                "default": "immediate",
                "description": concat!(
                    "immediate (default), defer_until_approval (always wait for a human ",
                    "approval), or scheduled (with execute_after)."
                )
            },
            "execute_after": {
                "type": "string",
                "format": "date-time",
                "description": "RFC 3339 time before which a scheduled payment is not executed."
            },
            "idempotency_key": {
                "type": "string",
                "minLength": 1,
                "maxLength": 256,
                "description":
                    "Retries with the same key and parameters return the original session."
            },
            "metadata": {
                "type": "object",
                "description": "Free-form facts for the audit trail, at most 4 KiB as JSON."
            }
        },
        "required": ["amount", "recipient"],
        "additionalProperties": false
    })
}

fn session_input(with_commitment: bool) -> Value {
    let mut props = json!({
        "session_id": {
            "type": "string",
            "minLength": 1,
            "maxLength": 64,
            "description": "The session returned by initialize_payment."
        }
    });
    if with_commitment && let Some(map) = props.as_object_mut() {
        map.insert(
            "commitment".into(),
            json!({
                "type": "string",
                "enum": ["processed", "confirmed", "finalized"],
                "default": "finalized",
                "description": "The commitment the caller waits for."
            }),
        );
    }
    json!({
        "type": "object",
        "properties": props,
        "required": ["session_id"],
        "additionalProperties": false
    })
}

fn balance_input() -> Value {
    json!({
        "type": "object",
        "properties": {
            "asset": {
                "type": "string",
                "enum": ["SOL", "USDC", "BONK"],
                "description": "Only this asset."
            }
        },
        "additionalProperties": false
    })
}

fn estimate_input() -> Value {
    json!({
        "type": "object",
        "properties": {
            "amount": { "type": "string", "pattern": AMOUNT_PATTERN },
            "recipient": { "type": "string", "minLength": 3, "maxLength": 254 },
            "session_id": { "type": "string", "minLength": 1, "maxLength": 64 }
        },
        "description": "Either amount and recipient, or session_id.",
        "additionalProperties": false
    })
}

fn fee_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "base_fee_lamports": { "type": "string" },
            "priority_fee_lamports": { "type": "string" },
            "rent_lamports": { "type": "string" },
            "total_lamports": { "type": "string" },
            "total": { "type": "string" }
        },
        "required": [
            "base_fee_lamports",
            "priority_fee_lamports",
            "rent_lamports",
            "total_lamports",
            "total"
        ]
    })
}

fn session_result() -> Value {
    json!({
        "type": "object",
        "properties": {
            "session_id": { "type": "string" },
            "state": {
                "type": "string",
                "enum": [
                    "initialized", "awaiting_approval", "approved", "signed", "submitted",
                    "confirmed", "finalized", "rejected", "cancelled", "expired", "failed"
                ]
            },
            "amount": { "type": "string" },
            "asset": { "type": "string" },
            "base_units": { "type": "string" },
            "recipient": { "type": "string" },
            "recipient_address": { "type": "string" },
            "payer": { "type": "string" },
            "expires_at": { "type": "string" },
            "signature": { "type": ["string", "null"] },
            "commitment": { "type": ["string", "null"] },
            "slot": { "type": ["integer", "null"] },
            "settled": { "type": "boolean" },
            "fee_estimate": fee_schema()
        },
        "required": ["session_id", "state", "amount", "asset", "base_units", "recipient_address"]
    })
}

fn balance_result() -> Value {
    json!({
        "type": "object",
        "properties": {
            "wallet": { "type": "string" },
            "network": { "type": "string" },
            "balances": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "asset": { "type": "string" },
                        "amount": { "type": "string" },
                        "base_units": { "type": "string" },
                        "mint": { "type": ["string", "null"] }
                    },
                    "required": ["asset", "amount", "base_units"]
                }
            }
        },
        "required": ["wallet", "network", "balances"]
    })
}

fn estimate_result() -> Value {
    let mut fee = fee_schema();
    if let Some(props) = fee.get_mut("properties").and_then(Value::as_object_mut) {
        props.insert(
            "creates_recipient_account".into(),
            json!({ "type": "boolean" }),
        );
    }
    fee
}

/// The envelope around a tool's result: success with `result` and `rate_limit`, or failure.
fn output_schema(result: Value) -> Value {
    let codes: Vec<&str> = ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
    json!({
        "type": "object",
        "properties": {
            "success": { "type": "boolean" },
            "result": result,
            "rate_limit": {
                "type": "object",
                "properties": {
                    "limit": { "type": "integer" },
                    "remaining": { "type": "integer" },
                    "reset_at": { "type": "integer", "description": "Epoch milliseconds." }
                },
                "required": ["limit", "remaining", "reset_at"]
            },
            "error": {
                "type": "object",
                "properties": {
                    "code": { "type": "string", "enum": codes },
                    "message": { "type": "string" },
                    "details": { "type": "object" },
                    "retryable": { "type": "boolean" }
                },
                "required": ["code", "message", "details", "retryable"]
            },
            "timestamp": { "type": "integer", "description": "Epoch milliseconds." }
        },
        "required": ["success"]
    })
}
