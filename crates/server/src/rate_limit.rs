//! Per-agent tool-call rate limiting: a fixed one-minute window per agent.
//!
//! Every response carries the caller's `rate_limit` block; a call over the limit gets
//! `RATE_LIMIT_EXCEEDED` with `retry_after` in seconds. State is per process.

use std::collections::HashMap;
use std::sync::Mutex;

use clawfirst_core::AgentId;

const WINDOW_MS: u64 = 60_000;

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

/// Counts tool calls per agent.
#[derive(Debug)]
pub struct RateLimiter {
    limit: u32,
    windows: Mutex<HashMap<AgentId, (u64, u32)>>,
}

impl RateLimiter {
    /// A limiter allowing `limit` calls per agent per minute.
    pub fn new(limit: u32) -> Self {
        Self {
            limit,
            windows: Mutex::new(HashMap::new()),
        }
    }

    /// Counts one call at `now_ms`. A poisoned lock fails closed.
    pub fn check(&self, agent: &AgentId, now_ms: u64) -> RateStatus {
        let window_start = now_ms - now_ms % WINDOW_MS;
        let reset_at_ms = window_start + WINDOW_MS;
        let Ok(mut windows) = self.windows.lock() else {
            return RateStatus {
                limit: self.limit,
                remaining: 0,
                reset_at_ms,
                allowed: false,
            };
        };
        let entry = windows.entry(agent.clone()).or_insert((window_start, 0));
        if entry.0 != window_start {
            *entry = (window_start, 0);
        }
        let allowed = entry.1 < self.limit;
        if allowed {
            entry.1 += 1;
        }
        RateStatus {
            limit: self.limit,
            remaining: self.limit - entry.1,
            reset_at_ms,
            allowed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_past_the_limit_and_resets_with_the_window() {
        let limiter = RateLimiter::new(2);
        let a = AgentId::new("a").unwrap_or_else(|_| unreachable!());
        let t = 1_000_000 * WINDOW_MS;
        assert!(limiter.check(&a, t).allowed);
        assert_eq!(limiter.check(&a, t + 1).remaining, 0);
        let third = limiter.check(&a, t + 2);
        assert!(!third.allowed);
        assert_eq!(third.reset_at_ms, t + WINDOW_MS);
        assert!(limiter.check(&a, t + WINDOW_MS).allowed);
        let b = AgentId::new("b").unwrap_or_else(|_| unreachable!());
        assert!(limiter.check(&b, t + 3).allowed);
    }
}
