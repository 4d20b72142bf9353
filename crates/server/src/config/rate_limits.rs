//! The `[rate_limits]` section: per-agent limits, with overrides for some agents.
//!
//! ```toml
//! [rate_limits]
//! tool_calls_per_minute = 6000   # any tool
//! payments_per_minute = 600      # x402.initialize_payment calls
//! open_sessions = 1000           # payment sessions that have not ended
//!
//! [rate_limits.agents."bot-7"]   # each key optional; the others keep the defaults
//! payments_per_minute = 10
//! ```
//!
//! Every limit must be at least 1: an agent that may do nothing is suspended, not limited.

use std::collections::{BTreeMap, HashMap};

use clawfirst_core::AgentId;
use serde::Deserialize;

use super::{ConfigError, invalid};
use crate::rate_limit::{AgentRateLimits, RateLimits};

/// The section as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRateLimits {
    tool_calls_per_minute: Option<u32>,
    payments_per_minute: Option<u32>,
    open_sessions: Option<u32>,
    #[serde(default)]
    agents: BTreeMap<String, RawAgentLimits>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAgentLimits {
    tool_calls_per_minute: Option<u32>,
    payments_per_minute: Option<u32>,
    open_sessions: Option<u32>,
}

impl RawAgentLimits {
    fn over(&self, base: AgentRateLimits, scope: &str) -> Result<AgentRateLimits, ConfigError> {
        let pick = |value: Option<u32>, default: u32, key: &str| match value {
            Some(0) => Err(invalid(format!("{scope}.{key}"), "must be at least 1")),
            Some(v) => Ok(v),
            None => Ok(default),
        };
        Ok(AgentRateLimits {
            tool_calls_per_minute: pick(
                self.tool_calls_per_minute,
                base.tool_calls_per_minute,
                "tool_calls_per_minute",
            )?,
            payments_per_minute: pick(
                self.payments_per_minute,
                base.payments_per_minute,
                "payments_per_minute",
            )?,
            open_sessions: pick(self.open_sessions, base.open_sessions, "open_sessions")?,
        })
    }
}

/// Checks the section.
pub(super) fn build(raw: RawRateLimits) -> Result<RateLimits, ConfigError> {
    let defaults = RawAgentLimits {
        tool_calls_per_minute: raw.tool_calls_per_minute,
        payments_per_minute: raw.payments_per_minute,
        open_sessions: raw.open_sessions,
    }
    .over(AgentRateLimits::DEFAULT, "rate_limits")?;
    let mut agents = HashMap::new();
    for (id, own) in raw.agents {
        let scope = format!("rate_limits.agents.{id}");
        let agent = AgentId::new(id.as_str()).map_err(|e| invalid(&scope, e))?;
        agents.insert(agent, own.over(defaults, &scope)?);
    }
    Ok(RateLimits::new(defaults, agents))
}
