//! Per-agent rate limits: tool calls per minute, payments per minute, open payment sessions.
//!
//! Calls and payments are counted in fixed one-minute windows per agent; open sessions are
//! counted in the store (every session that has not ended). Every tool response carries the
//! caller's `rate_limit` block for tool calls; a call over any limit gets
//! `RATE_LIMIT_EXCEEDED` with `retry_after` in seconds and the limit that refused it. The
//! minute counters are per process: with several replicas each counts its own calls.

use std::collections::HashMap;
use std::sync::Mutex;

use clawfirst_core::AgentId;

const WINDOW_MS: u64 = 60_000;

/// One agent's limits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AgentRateLimits {
    /// Tool calls of any kind per minute.
    pub tool_calls_per_minute: u32,
    /// `initialize_payment` calls per minute.
    pub payments_per_minute: u32,
    /// Payment sessions that have not ended, at most.
    pub open_sessions: u32,
}

impl AgentRateLimits {
    /// 6000 tool calls and 600 payments per minute, 1000 open sessions.
    pub const DEFAULT: AgentRateLimits = AgentRateLimits {
        tool_calls_per_minute: 6000,
        payments_per_minute: 600,
        open_sessions: 1000,
    };
}

/// The limits of every agent: defaults, and overrides for some agents.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RateLimits {
    defaults: AgentRateLimits,
    agents: HashMap<AgentId, AgentRateLimits>,
}

impl Default for RateLimits {
    fn default() -> Self {
        Self::new(AgentRateLimits::DEFAULT, HashMap::new())
    }
}

impl RateLimits {
    /// Defaults for every agent, with per-agent overrides.
    pub fn new(defaults: AgentRateLimits, agents: HashMap<AgentId, AgentRateLimits>) -> Self {
        Self { defaults, agents }
    }

    /// The limits that apply to `agent`.
    pub fn for_agent(&self, agent: &AgentId) -> AgentRateLimits {
        self.agents.get(agent).copied().unwrap_or(self.defaults)
    }
}

/// The caller's standing after a call was counted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateStatus {
    /// Calls allowed per window.
    pub limit: u32,
    /// Calls left in the current window.
    pub remaining: u32,
    /// When the window resets, epoch ms.
    pub reset_at_ms: u64,
    /// Whether this call was allowed.
    pub allowed: bool,
}

impl RateStatus {
    /// Whole seconds until the window resets, at least one.
    pub fn retry_after_s(&self, now_ms: u64) -> u64 {
        self.reset_at_ms
            .saturating_sub(now_ms)
            .div_ceil(1000)
            .max(1)
    }
}

/// Counts events per agent in one-minute windows.
#[derive(Debug, Default)]
pub struct RateLimiter {
    windows: Mutex<HashMap<AgentId, (u64, u32)>>,
}

impl RateLimiter {
    /// An empty limiter.
    pub fn new() -> Self {
        Self::default()
    }

    /// Counts one event at `now_ms` against `limit` per minute. A poisoned lock fails closed.
    pub fn check(&self, agent: &AgentId, limit: u32, now_ms: u64) -> RateStatus {
        let window_start = now_ms - now_ms % WINDOW_MS;
        let reset_at_ms = window_start + WINDOW_MS;
        let Ok(mut windows) = self.windows.lock() else {
            return RateStatus {
                limit,
                remaining: 0,
                reset_at_ms,
                allowed: false,
            };
        };
        let entry = windows.entry(agent.clone()).or_insert((window_start, 0));
        if entry.0 != window_start {
            *entry = (window_start, 0);
        }
        let allowed = entry.1 < limit;
        if allowed {
            entry.1 += 1;
        }
        RateStatus {
            limit,
            remaining: limit.saturating_sub(entry.1),
            reset_at_ms,
            allowed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agent(name: &str) -> AgentId {
        AgentId::new(name).unwrap_or_else(|_| unreachable!("valid id"))
    }

    #[test]
    fn refuses_past_the_limit_and_resets_with_the_window() {
        let limiter = RateLimiter::new();
        let a = agent("a");
        let t = 1_000_000 * WINDOW_MS;
        assert!(limiter.check(&a, 2, t).allowed);
        assert_eq!(limiter.check(&a, 2, t + 1).remaining, 0);
        let third = limiter.check(&a, 2, t + 2);
        assert!(!third.allowed);
        assert_eq!(third.reset_at_ms, t + WINDOW_MS);
        assert_eq!(third.retry_after_s(t + 2), 60);
        assert!(limiter.check(&a, 2, t + WINDOW_MS).allowed);
        assert!(limiter.check(&agent("b"), 2, t + 3).allowed);
    }

    #[test]
    fn an_agent_override_replaces_the_defaults() {
        let tight = AgentRateLimits {
            tool_calls_per_minute: 10,
            payments_per_minute: 1,
            open_sessions: 2,
        };
        let limits = RateLimits::new(
            AgentRateLimits::DEFAULT,
            HashMap::from([(agent("tight"), tight)]),
        );
        assert_eq!(limits.for_agent(&agent("tight")), tight);
        assert_eq!(limits.for_agent(&agent("other")), AgentRateLimits::DEFAULT);
    }
}
