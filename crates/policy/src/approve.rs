//! The last steps of an evaluation: first-time recipient, tier and the agent's own request for
//! approval. Each may ask for human approval; the requirement with the most approvals wins, and
//! on a tie the one found first. A denial at any of them still wins over every requirement.

use std::sync::Arc;

use crate::compile::{Compiled, Requirement};
use crate::decision::{ApprovalRequirement, BudgetCap, Decision, PaymentFacts, Permit};
use crate::evaluate::Tracer;
use crate::explain::StepOutcome;
use crate::model::TierAction;
use crate::policy::Policy;
use crate::raw::FirstTime;
use crate::rule::Rule;

/// The approval requirement that currently wins.
struct Pending<'p> {
    rule: Rule,
    requirement: &'p Requirement,
}

impl Policy {
    /// Steps 11 to 13 of the crate docs, after every cap passed.
    pub(crate) fn conclude<T: Tracer>(
        &self,
        facts: &PaymentFacts<'_>,
        c: &Compiled,
        usd: Option<u64>,
        budgets: &Arc<[BudgetCap]>,
        t: &mut T,
    ) -> Decision {
        use StepOutcome::{NeedsApproval, NotConfigured, Pass};
        let rules = &c.rules;
        let asset = facts.amount.asset();
        let units = facts.amount.base_units();

        // 8. First-time recipient, tier, the agent's own request: the strictest approval wins.
        let mut pending: Option<Pending<'_>> = None;
        if facts.first_payment_to_recipient {
            match rules.first_time {
                FirstTime::Allow => t.step(Rule::FirstTimeRecipient, Pass, || {
                    "first payment to this recipient is allowed".into()
                }),
                FirstTime::Deny => {
                    return self.deny(
                        t,
                        Rule::FirstTimeRecipient,
                        "payments to recipients this agent has not paid before are not allowed"
                            .into(),
                    );
                }
                FirstTime::Approve => match &c.approval {
                    Some(req) => {
                        t.step(Rule::FirstTimeRecipient, NeedsApproval, || describe(req));
                        stricter(&mut pending, Rule::FirstTimeRecipient, req);
                    }
                    None => {
                        return self.deny(
                            t,
                            Rule::FirstTimeRecipient,
                            "no approvers are configured for this agent".into(),
                        );
                    }
                },
            }
        } else {
            t.step(Rule::FirstTimeRecipient, Pass, || {
                "recipient was paid before".into()
            });
        }

        let mut tier_name: Option<&Arc<str>> = None;
        let mut allowed_by = Rule::Caps;
        if c.tiers.is_empty() {
            t.step(Rule::Tier, NotConfigured, || {
                "no tiers: allowed by the caps".into()
            });
        } else {
            let Some(tier) = c.tiers.iter().find(|ct| ct.tier.fits(asset, units, usd)) else {
                return self.deny(
                    t,
                    Rule::Tier,
                    "no tier of the policy covers this amount".into(),
                );
            };
            tier_name = Some(&tier.name);
            match (&tier.tier.action, &tier.approval) {
                (TierAction::Deny, _) => {
                    let mut decision = self.deny(
                        t,
                        Rule::Tier,
                        format!("amounts in tier {} are not allowed", tier.name),
                    );
                    if let Decision::Deny(denial) = &mut decision {
                        denial.tier = Some(tier.name.to_string());
                    }
                    return decision;
                }
                (TierAction::Approve(_), Some(req)) => {
                    t.step(Rule::Tier, NeedsApproval, || {
                        format!("tier {}: {}", tier.name, describe(req))
                    });
                    stricter(&mut pending, Rule::Tier, req);
                }
                _ => {
                    allowed_by = Rule::Tier;
                    t.step(Rule::Tier, Pass, || format!("tier {} allows", tier.name));
                }
            }
        }

        if facts.defer_until_approval {
            match &c.approval {
                Some(req) => {
                    t.step(Rule::ApprovalRequested, NeedsApproval, || describe(req));
                    stricter(&mut pending, Rule::ApprovalRequested, req);
                }
                None => {
                    return self.deny(
                        t,
                        Rule::ApprovalRequested,
                        "no approvers are configured for this agent".into(),
                    );
                }
            }
        }

        match pending {
            Some(p) => Decision::NeedsApproval(ApprovalRequirement {
                rule: p.rule,
                tier: tier_name.cloned(),
                budgets: Arc::clone(budgets),
                usd_micros: usd,
                group: Arc::clone(&p.requirement.group),
                approvers: Arc::clone(&p.requirement.approvers),
                required: p.requirement.required,
                timeout_ms: p.requirement.timeout_ms,
                version: self.version,
            }),
            None => Decision::Allow(Permit {
                rule: allowed_by,
                tier: tier_name.cloned(),
                budgets: Arc::clone(budgets),
                usd_micros: usd,
                version: self.version,
            }),
        }
    }
}

/// Keeps the requirement with the most approvals; on a tie the one found first stays.
fn stricter<'p>(pending: &mut Option<Pending<'p>>, rule: Rule, requirement: &'p Requirement) {
    if pending
        .as_ref()
        .is_none_or(|p| requirement.required > p.requirement.required)
    {
        *pending = Some(Pending { rule, requirement });
    }
}

fn describe(req: &Requirement) -> String {
    format!(
        "{} of group {} within {} s",
        req.required,
        req.group,
        req.timeout_ms / 1000
    )
}
