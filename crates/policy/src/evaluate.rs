//! The evaluation itself, written once and run with or without a trace.
//!
//! Steps run in the order of the crate docs and stop at the first denial. The tracer is a type
//! parameter: for [`Silent`] every trace call compiles away, so `evaluate` pays nothing for
//! `explain`.

use std::collections::HashSet;

use clawfirst_core::Address;

use crate::decimal::{format_amount, format_usd};
use crate::decision::{Decision, Denial, Measure, PaymentFacts};
use crate::explain::StepOutcome;
use crate::policy::Policy;
use crate::rule::Rule;
use crate::window::{format_date, utc_day};

/// Receives the steps of an evaluation.
pub(crate) trait Tracer {
    /// Records one step; `detail` is only called when tracing.
    fn step(&mut self, rule: Rule, outcome: StepOutcome, detail: impl FnOnce() -> String);
}

/// Records nothing.
pub(crate) struct Silent;

impl Tracer for Silent {
    #[inline(always)]
    fn step(&mut self, _: Rule, _: StepOutcome, _: impl FnOnce() -> String) {}
}

impl Policy {
    pub(crate) fn run<T: Tracer>(&self, facts: &PaymentFacts<'_>, t: &mut T) -> Decision {
        use StepOutcome::{NotConfigured, Pass};
        let c = self.compiled_for(facts.agent_id);
        let rules = &c.rules;
        let asset = facts.amount.asset();
        let units = facts.amount.base_units();
        let usd = c.prices.usd_micros(asset, units);

        // 1. The agent's standing.
        match facts.agent_state {
            crate::AgentState::Suspended => {
                return self.deny(t, Rule::AgentSuspended, "this agent is suspended".into());
            }
            crate::AgentState::BreakerOpen => {
                return self.deny(
                    t,
                    Rule::BreakerOpen,
                    "this agent's circuit breaker is open".into(),
                );
            }
            crate::AgentState::Active => {
                t.step(Rule::AgentSuspended, Pass, || "agent is active".into())
            }
        }

        // 2. Network and asset.
        match &self.networks {
            Some(allowed) if !allowed.contains(facts.network) => {
                return self.deny(
                    t,
                    Rule::NetworkNotAllowed,
                    format!("payments on {} are not allowed", short(facts.network)),
                );
            }
            Some(_) => t.step(Rule::NetworkNotAllowed, Pass, || {
                format!("{} is allowed", facts.network)
            }),
            None => t.step(Rule::NetworkNotAllowed, NotConfigured, || {
                "every network is allowed".into()
            }),
        }
        if !rules.assets.contains(&asset) {
            return self.deny(
                t,
                Rule::AssetNotAllowed,
                format!("payments in {asset} are not allowed"),
            );
        }
        t.step(Rule::AssetNotAllowed, Pass, || {
            format!("{asset} is allowed")
        });

        // 3. Recipient lists: canaries, blocklist, allowlist.
        if c.canaries.contains(facts.recipient) {
            let mut decision = self.deny(
                t,
                Rule::CanaryPayee,
                "payments to this recipient are not allowed".into(),
            );
            if let Decision::Deny(denial) = &mut decision {
                denial.trips_breaker = true;
            }
            return decision;
        }
        t.step(Rule::CanaryPayee, Pass, || {
            "recipient is not a canary payee".into()
        });
        // Directory e-mails are lower case on both sides (core normalises them when parsing).
        let named_in = |addresses: &HashSet<Address>, emails: &HashSet<String>| {
            addresses.contains(facts.recipient)
                || facts.recipient_label.is_some_and(|l| emails.contains(l))
        };
        if named_in(&c.block_addresses, &c.block_emails) {
            return self.deny(
                t,
                Rule::RecipientBlocked,
                "payments to this recipient are blocked".into(),
            );
        }
        t.step(Rule::RecipientBlocked, Pass, || {
            "recipient is not blocked".into()
        });
        if rules.allow.is_empty() {
            t.step(Rule::RecipientNotAllowed, NotConfigured, || {
                "no recipient allowlist".into()
            });
        } else if named_in(&c.allow_addresses, &c.allow_emails) {
            t.step(Rule::RecipientNotAllowed, Pass, || {
                "recipient is on the allowlist".into()
            });
        } else {
            return self.deny(
                t,
                Rule::RecipientNotAllowed,
                "this recipient is not on the agent's list of allowed recipients".into(),
            );
        }

        // 4. Dates and times.
        let day = utc_day(facts.at_ms);
        if rules.active_from.is_some_and(|from| day < from)
            || rules.active_until.is_some_and(|until| day > until)
        {
            return self.deny(
                t,
                Rule::OutsideActiveDates,
                "payments are not allowed on this date".into(),
            );
        }
        match (rules.active_from, rules.active_until) {
            (None, None) => t.step(Rule::OutsideActiveDates, NotConfigured, || {
                "no date window".into()
            }),
            (from, until) => t.step(Rule::OutsideActiveDates, Pass, || {
                format!(
                    "{} is within {} ..= {}",
                    format_date(day),
                    from.map_or("any".into(), format_date),
                    until.map_or("any".into(), format_date)
                )
            }),
        }
        if rules.time_windows.is_empty() {
            t.step(Rule::OutsideTimeWindow, NotConfigured, || {
                "no time-of-day window".into()
            });
        } else if rules.time_windows.iter().any(|w| w.contains(facts.at_ms)) {
            t.step(Rule::OutsideTimeWindow, Pass, || {
                "inside a time window".into()
            });
        } else {
            return self.deny(
                t,
                Rule::OutsideTimeWindow,
                "payments are not allowed at this time of day".into(),
            );
        }

        // 5. Purpose.
        let above_asset = rules
            .purpose_above
            .get(&asset)
            .is_some_and(|limit| units > *limit);
        let above_usd = rules
            .purpose_above_usd
            .is_some_and(|limit| usd.is_none_or(|v| v > limit));
        let has_purpose = facts.purpose.is_some_and(|p| !p.trim().is_empty());
        if (above_asset || above_usd) && !has_purpose {
            return self.deny(
                t,
                Rule::PurposeRequired,
                "state the purpose of this payment: it is required for this amount".into(),
            );
        }
        t.step(
            Rule::PurposeRequired,
            if above_asset || above_usd {
                Pass
            } else {
                NotConfigured
            },
            || {
                if has_purpose {
                    "a purpose is stated".into()
                } else {
                    "no purpose needed for this amount".into()
                }
            },
        );

        // 6. Per-transaction caps, asset then USD.
        if let Some(cap) = rules.per_transaction.get(&asset).copied() {
            if units > cap {
                return self.deny(
                    t,
                    Rule::PerTransactionCap,
                    format!(
                        "amount exceeds the per-transaction cap of {}",
                        format_amount(asset, cap)
                    ),
                );
            }
            t.step(Rule::PerTransactionCap, Pass, || {
                format!("within {}", format_amount(asset, cap))
            });
        } else {
            // Unreachable for an allowed asset (checked at load); fail closed all the same.
            return self.deny(
                t,
                Rule::PerTransactionCap,
                format!("payments in {asset} are not allowed"),
            );
        }
        if let Some(cap) = rules.usd_per_transaction {
            match usd {
                Some(v) if v <= cap => t.step(Rule::UsdPerTransactionCap, Pass, || {
                    format!("{} within {}", format_usd(v), format_usd(cap))
                }),
                Some(_) => {
                    return self.deny(
                        t,
                        Rule::UsdPerTransactionCap,
                        format!(
                            "amount exceeds the per-transaction cap of {}",
                            format_usd(cap)
                        ),
                    );
                }
                None => {
                    return self.deny(
                        t,
                        Rule::UsdPerTransactionCap,
                        "the USD value of this amount cannot be computed".into(),
                    );
                }
            }
        }

        // 7. Rolling and count caps: checked against usage when given, always returned.
        let budgets = c.budgets(asset);
        for budget in budgets.iter() {
            let add = match budget.measure {
                Measure::BaseUnits => units,
                Measure::Count => 1,
                Measure::UsdMicros => match usd {
                    Some(v) => v,
                    None => {
                        return self.deny(
                            t,
                            budget.rule,
                            "the USD value of this amount cannot be computed".into(),
                        );
                    }
                },
            };
            let in_measure = |value: u64| match budget.measure {
                Measure::BaseUnits => format_amount(asset, value),
                Measure::UsdMicros => format_usd(value),
                Measure::Count => format!("{value} payments"),
            };
            let cap_text = || in_measure(budget.cap);
            match facts
                .usage
                .and_then(|u| u.used(budget.measure, budget.window_ms))
            {
                Some(used) if used.saturating_add(add) > budget.cap => {
                    return self.deny(
                        t,
                        budget.rule,
                        format!(
                            "this payment would exceed the {} cap of {}",
                            window_word(budget.rule),
                            cap_text()
                        ),
                    );
                }
                Some(used) => t.step(budget.rule, Pass, || {
                    format!(
                        "{} used of {}; reserve on authorization",
                        in_measure(used),
                        cap_text()
                    )
                }),
                None => t.step(budget.rule, Pass, || {
                    format!("cap {}; reserve on authorization", cap_text())
                }),
            }
        }

        self.conclude(facts, c, usd, budgets, t)
    }

    pub(crate) fn deny<T: Tracer>(&self, t: &mut T, rule: Rule, reason: String) -> Decision {
        t.step(rule, StepOutcome::Deny, || reason.clone());
        Decision::Deny(Denial {
            rule,
            reason,
            tier: None,
            trips_breaker: false,
            policy_version: self.version,
        })
    }
}

fn window_word(rule: Rule) -> &'static str {
    match rule {
        Rule::HourlyCap | Rule::UsdHourlyCap | Rule::PaymentsPerHour => "hourly",
        Rule::DailyCap | Rule::UsdDailyCap | Rule::PaymentsPerDay => "daily",
        Rule::WeeklyCap | Rule::UsdWeeklyCap | Rule::PaymentsPerWeek => "weekly",
        Rule::PaymentsPerMinute => "per-minute",
        _ => "30-day",
    }
}

/// Bounds echoed text from the caller.
fn short(text: &str) -> String {
    crate::file::shorten(text)
}
