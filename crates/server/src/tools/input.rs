//! Parsing of tool arguments into typed requests.
//!
//! The server never trusts the client to have applied the input schema: every argument is
//! checked here again, unknown arguments are refused, and each error names its field.

use clawfirst_core::recipient::Recipient;
use clawfirst_core::{Amount, Asset, SessionId};
use rmcp::model::JsonObject;
use serde_json::Value;

use crate::error::ToolError;

/// The longest `purpose` accepted, in characters.
pub const MAX_PURPOSE_CHARS: usize = 500;
/// The longest idempotency key, in characters.
pub const MAX_IDEMPOTENCY_KEY_CHARS: usize = 256;
/// The largest `metadata` object, as compact JSON.
pub const MAX_METADATA_BYTES: usize = 4096;

/// When a payment may be executed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SettlementConstraint {
    /// As soon as it is authorized.
    Immediate,
    /// Only after a human approval.
    DeferUntilApproval,
    /// Not before `execute_after` (epoch ms).
    Scheduled {
        /// Epoch milliseconds.
        execute_after_ms: u64,
    },
}

impl SettlementConstraint {
    /// The name used in the input schema.
    pub fn name(self) -> &'static str {
        match self {
            SettlementConstraint::Immediate => "immediate",
            SettlementConstraint::DeferUntilApproval => "defer_until_approval",
            SettlementConstraint::Scheduled { .. } => "scheduled",
        }
    }
}

/// A validated `initialize_payment` request.
#[derive(Clone, Debug, PartialEq)]
pub struct InitializePayment {
    /// How much of what.
    pub amount: Amount,
    /// The recipient exactly as the agent gave it.
    pub recipient_input: String,
    /// The parsed recipient.
    pub recipient: Recipient,
    /// Why.
    pub purpose: Option<String>,
    /// When.
    pub constraint: SettlementConstraint,
    /// Retry key.
    pub idempotency_key: Option<String>,
    /// Audit facts.
    pub metadata: Option<Value>,
}

/// A validated `estimate_fees` request.
#[derive(Clone, Debug, PartialEq)]
pub enum EstimateRequest {
    /// For a hypothetical payment.
    Payment {
        /// How much of what.
        amount: Amount,
        /// To whom.
        recipient: Recipient,
    },
    /// For an existing session.
    Session(SessionId),
}

/// Typed access to a tool's argument object.
#[derive(Debug)]
pub struct Args<'a> {
    map: Option<&'a JsonObject>,
}

impl<'a> Args<'a> {
    /// Wraps the arguments, refusing any name not in `allowed`.
    ///
    /// # Errors
    /// `INVALID_INPUT` naming the first unknown argument.
    pub fn new(map: Option<&'a JsonObject>, allowed: &[&str]) -> Result<Self, ToolError> {
        if let Some(unknown) = map.and_then(|m| m.keys().find(|k| !allowed.contains(&k.as_str()))) {
            let shown: String = unknown.chars().take(64).collect();
            return Err(ToolError::invalid_input(&shown, "unknown argument"));
        }
        Ok(Self { map })
    }

    fn get(&self, field: &str) -> Option<&'a Value> {
        self.map.and_then(|m| m.get(field)).filter(|v| !v.is_null())
    }

    /// An optional string of at most `max_chars` characters.
    ///
    /// # Errors
    /// `INVALID_INPUT` when present but not a string or too long.
    pub fn optional_str(
        &self,
        field: &str,
        max_chars: usize,
    ) -> Result<Option<&'a str>, ToolError> {
        let Some(value) = self.get(field) else {
            return Ok(None);
        };
        let Some(text) = value.as_str() else {
            return Err(ToolError::invalid_input(field, "must be a string"));
        };
        if text.chars().count() > max_chars {
            return Err(ToolError::invalid_input(
                field,
                format!("must be at most {max_chars} characters"),
            ));
        }
        Ok(Some(text))
    }

    /// A required string.
    ///
    /// # Errors
    /// `INVALID_INPUT` when absent, not a string, or too long.
    pub fn required_str(&self, field: &str, max_chars: usize) -> Result<&'a str, ToolError> {
        self.optional_str(field, max_chars)?
            .ok_or_else(|| ToolError::invalid_input(field, "is required"))
    }

    /// A session id argument.
    ///
    /// # Errors
    /// `INVALID_INPUT` when absent or malformed.
    pub fn session_id(&self) -> Result<SessionId, ToolError> {
        let text = self.required_str("session_id", 64)?;
        SessionId::new(text).map_err(|e| ToolError::invalid_input("session_id", e))
    }
}

fn parse_amount(text: &str) -> Result<Amount, ToolError> {
    Amount::parse(text).map_err(|e| ToolError::invalid_input("amount", e))
}

fn parse_recipient(text: &str) -> Result<Recipient, ToolError> {
    Recipient::parse(text).map_err(|e| ToolError::invalid_input("recipient", e))
}

/// Parses `initialize_payment` arguments.
///
/// # Errors
/// `INVALID_INPUT` naming the first bad field.
pub fn initialize_payment(map: Option<&JsonObject>) -> Result<InitializePayment, ToolError> {
    let args = Args::new(
        map,
        &[
            "amount",
            "recipient",
            "purpose",
            "settlement_constraint",
            "execute_after",
            "idempotency_key",
            "metadata",
        ],
    )?;

    let amount = parse_amount(args.required_str("amount", 64)?)?;
    let recipient_input = args.required_str("recipient", 254)?.to_owned();
    let recipient = parse_recipient(&recipient_input)?;
    let purpose = args
        .optional_str("purpose", MAX_PURPOSE_CHARS)?
        .map(str::to_owned);
    if purpose
        .as_deref()
        .is_some_and(|p| p.chars().any(char::is_control))
    {
        return Err(ToolError::invalid_input(
            "purpose",
            "must not contain control characters",
        ));
    }

    let execute_after = args.optional_str("execute_after", 64)?;
    let constraint = match args.optional_str("settlement_constraint", 32)? {
        None | Some("immediate") => SettlementConstraint::Immediate,
        Some("defer_until_approval") => SettlementConstraint::DeferUntilApproval,
        Some("scheduled") => {
            let Some(text) = execute_after else {
                return Err(ToolError::invalid_input(
                    "execute_after",
                    "is required when settlement_constraint is scheduled",
                ));
            };
            SettlementConstraint::Scheduled {
                execute_after_ms: parse_rfc3339_ms(text)?,
            }
        }
        Some(_) => {
            return Err(ToolError::invalid_input(
                "settlement_constraint",
                "must be immediate, defer_until_approval or scheduled",
            ));
        }
    };
    if execute_after.is_some() && !matches!(constraint, SettlementConstraint::Scheduled { .. }) {
        return Err(ToolError::invalid_input(
            "execute_after",
            "is only allowed with settlement_constraint scheduled",
        ));
    }

    let idempotency_key = args
        .optional_str("idempotency_key", MAX_IDEMPOTENCY_KEY_CHARS)?
        .map(str::to_owned);
    if idempotency_key.as_deref() == Some("") {
        return Err(ToolError::invalid_input(
            "idempotency_key",
            "must not be empty",
        ));
    }

    let metadata = match args.get("metadata") {
        None => None,
        Some(Value::Object(m)) => {
            let size = serde_json::to_vec(m).map(|v| v.len()).unwrap_or(usize::MAX);
            if size > MAX_METADATA_BYTES {
                return Err(ToolError::invalid_input(
                    "metadata",
                    format!("must be at most {MAX_METADATA_BYTES} bytes as JSON"),
                ));
            }
            Some(Value::Object(m.clone()))
        }
        Some(_) => return Err(ToolError::invalid_input("metadata", "must be an object")),
    };

    Ok(InitializePayment {
        amount,
        recipient_input,
        recipient,
        purpose,
        constraint,
        idempotency_key,
        metadata,
    })
}

fn parse_rfc3339_ms(text: &str) -> Result<u64, ToolError> {
    let parsed = time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .map_err(|_| ToolError::invalid_input("execute_after", "must be an RFC 3339 time"))?;
    let ms = parsed.unix_timestamp_nanos() / 1_000_000;
    u64::try_from(ms).map_err(|_| ToolError::invalid_input("execute_after", "must be after 1970"))
}

/// Parses `query_balance` arguments.
///
/// # Errors
/// `INVALID_INPUT` for an unknown asset.
pub fn query_balance(map: Option<&JsonObject>) -> Result<Option<Asset>, ToolError> {
    let args = Args::new(map, &["asset"])?;
    args.optional_str("asset", 16)?
        .map(|a| {
            a.parse::<Asset>()
                .map_err(|e| ToolError::invalid_input("asset", e))
        })
        .transpose()
}

/// Parses `estimate_fees` arguments.
///
/// # Errors
/// `INVALID_INPUT` naming the bad or missing field.
pub fn estimate_fees(map: Option<&JsonObject>) -> Result<EstimateRequest, ToolError> {
    let args = Args::new(map, &["amount", "recipient", "session_id"])?;
    if args.get("session_id").is_some() {
        if args.get("amount").is_some() || args.get("recipient").is_some() {
            return Err(ToolError::invalid_input(
                "session_id",
                "give either session_id or amount and recipient, not both",
            ));
        }
        return Ok(EstimateRequest::Session(args.session_id()?));
    }
    let amount = parse_amount(args.required_str("amount", 64)?)?;
    let recipient = parse_recipient(args.required_str("recipient", 254)?)?;
    Ok(EstimateRequest::Payment { amount, recipient })
}

/// Parses the commitment argument of `verify_settlement`.
///
/// # Errors
/// `INVALID_INPUT` for an unknown commitment.
pub fn session_with_commitment(
    map: Option<&JsonObject>,
) -> Result<(SessionId, clawfirst_solana::ledger::Commitment), ToolError> {
    use clawfirst_solana::ledger::Commitment;
    let args = Args::new(map, &["session_id", "commitment"])?;
    let id = args.session_id()?;
    let commitment = match args.optional_str("commitment", 16)? {
        None | Some("finalized") => Commitment::Finalized,
        Some("confirmed") => Commitment::Confirmed,
        Some("processed") => Commitment::Processed,
        Some(_) => {
            return Err(ToolError::invalid_input(
                "commitment",
                "must be processed, confirmed or finalized",
            ));
        }
    };
    Ok((id, commitment))
}

/// Parses arguments that are only a session id.
///
/// # Errors
/// `INVALID_INPUT` when the session id is missing or malformed.
pub fn session_only(map: Option<&JsonObject>) -> Result<SessionId, ToolError> {
    Args::new(map, &["session_id"])?.session_id()
}

#[cfg(test)]
mod tests;
