//! `policy explain` against the running server: the policy in force, the agent's standing,
//! its recipient history and its current rolling usage, for a payment that is not made.
//!
//! Nothing is reserved or written except nothing at all: an explanation is a read. The
//! rolling caps are checked here against a snapshot of usage, so the trace shows them; a real
//! payment checks them again atomically when it reserves its budget.

use clawfirst_core::recipient::Recipient;
use clawfirst_core::{AgentId, Amount, now_ms};
use clawfirst_policy::{
    AgentState, DAY_MS, HOUR_MS, MINUTE_MS, MONTH_MS, Measure, PaymentFacts, Usage, WEEK_MS,
};
use clawfirst_store::AgentStatus;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{PaymentService, internal};
use crate::error::ToolError;

/// The windows whose usage an explanation looks up.
const WINDOWS: [u64; 5] = [MINUTE_MS, HOUR_MS, DAY_MS, WEEK_MS, MONTH_MS];

/// A hypothetical payment.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExplainRequest {
    /// The paying agent.
    pub agent_id: String,
    /// `"<decimal> <ASSET>"`, as agents write it.
    pub amount: String,
    /// An address or a payee e-mail.
    pub recipient: String,
    /// The stated purpose.
    pub purpose: Option<String>,
    /// Whether the agent asks for a human approval.
    #[serde(default)]
    pub defer_until_approval: bool,
    /// When, in milliseconds since the Unix epoch (default: now).
    pub at_ms: Option<u64>,
}

impl PaymentService {
    /// Explains what policy would decide for a payment, step by step.
    ///
    /// # Errors
    /// `INVALID_INPUT` naming the field that is wrong; internal failures.
    pub async fn explain(&self, req: ExplainRequest) -> Result<Value, ToolError> {
        // 1. The payment's facts, checked as a tool call would check them.
        let agent_id = AgentId::new(req.agent_id.as_str())
            .map_err(|e| ToolError::invalid_input("agent_id", e))?;
        let amount =
            Amount::parse(&req.amount).map_err(|e| ToolError::invalid_input("amount", e))?;
        let recipient = Recipient::parse(&req.recipient)
            .and_then(|r| self.payees.resolve(&r))
            .map_err(|e| ToolError::invalid_input("recipient", e))?;
        let agent = self
            .store
            .agent(&agent_id)
            .await
            .map_err(|e| internal("load agent", &e))?
            .ok_or_else(|| ToolError::invalid_input("agent_id", "no such agent"))?;
        let agent_state = match agent.status {
            AgentStatus::Active => AgentState::Active,
            _ => AgentState::Suspended,
        };
        let at_ms = req.at_ms.unwrap_or_else(now_ms);

        // 2. What the store knows: recipient history and usage in every window.
        let paid_before = self
            .store
            .has_paid_recipient(&agent_id, &recipient)
            .await
            .map_err(|e| internal("recipient history", &e))?;
        let mut usage = Usage::new();
        for window_ms in WINDOWS {
            let since = at_ms.saturating_sub(window_ms);
            for (measure, stored) in [
                (Measure::BaseUnits, clawfirst_store::Measure::BaseUnits),
                (Measure::UsdMicros, clawfirst_store::Measure::UsdMicros),
                (Measure::Count, clawfirst_store::Measure::Count),
            ] {
                let used = self
                    .store
                    .budget_usage_measured(&agent_id, amount.asset(), stored, since)
                    .await
                    .map_err(|e| internal("usage", &e))?;
                usage.record(measure, window_ms, used);
            }
        }

        // 3. The trace.
        let label = self.payees.email_of(&recipient);
        let facts = PaymentFacts {
            agent_id: &agent_id,
            agent_state,
            network: self.ledger.network().name(),
            amount,
            recipient: &recipient,
            recipient_label: label,
            purpose: req.purpose.as_deref(),
            first_payment_to_recipient: !paid_before,
            defer_until_approval: req.defer_until_approval,
            at_ms,
            usage: Some(&usage),
        };
        let policy = self.policy.current();
        let explanation = policy.explain(&facts);
        Ok(explanation_json(
            &explanation,
            &policy.version().to_string(),
        ))
    }
}

/// An explanation as the admin API returns it: the decision, each step, and the text the CLI
/// prints.
pub fn explanation_json(explanation: &clawfirst_policy::Explanation, version: &str) -> Value {
    let decision = explanation.decision();
    let steps: Vec<Value> = explanation
        .steps()
        .iter()
        .map(|s| json!({ "rule": s.rule.name(), "outcome": s.outcome.name(), "detail": s.detail }))
        .collect();
    json!({
        "decision": decision.kind(),
        "rule": decision.rule().name(),
        "policy_version": version,
        "steps": steps,
        "text": explanation.to_string(),
    })
}
