//! `explain`: the decision together with every step that led to it.

use std::fmt;

use crate::decimal::format_usd;
use crate::decision::{Decision, PolicyVersion};
use crate::evaluate::Tracer;
use crate::rule::Rule;

/// How one step of an evaluation ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum StepOutcome {
    /// The rule is configured and the payment passed it.
    Pass,
    /// The rule denied the payment; evaluation stopped here.
    Deny,
    /// The rule asks for human approval.
    NeedsApproval,
    /// The policy does not configure the rule.
    NotConfigured,
}

impl StepOutcome {
    /// `pass`, `deny`, `needs_approval` or `not_configured`.
    pub const fn name(self) -> &'static str {
        match self {
            StepOutcome::Pass => "pass",
            StepOutcome::Deny => "deny",
            StepOutcome::NeedsApproval => "needs_approval",
            StepOutcome::NotConfigured => "not_configured",
        }
    }
}

impl fmt::Display for StepOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One step of the trace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    /// The rule looked at.
    pub rule: Rule,
    /// How it ended.
    pub outcome: StepOutcome,
    /// A short, operator-facing detail (may reveal policy values).
    pub detail: String,
}

/// The decision for a hypothetical payment and the ordered trace of the rules it met.
#[derive(Clone, Debug)]
pub struct Explanation {
    decision: Decision,
    steps: Vec<Step>,
    version: PolicyVersion,
}

impl Explanation {
    pub(crate) fn new(decision: Decision, steps: Vec<Step>, version: PolicyVersion) -> Self {
        Self {
            decision,
            steps,
            version,
        }
    }

    /// The decision: the same as [`crate::Policy::evaluate`] gives for the same facts.
    pub fn decision(&self) -> &Decision {
        &self.decision
    }

    /// The steps, in evaluation order, up to the deciding one.
    pub fn steps(&self) -> &[Step] {
        &self.steps
    }

    /// Takes the decision out.
    pub fn into_decision(self) -> Decision {
        self.decision
    }
}

impl fmt::Display for Explanation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let width = self
            .steps
            .iter()
            .map(|s| s.rule.name().len())
            .max()
            .unwrap_or(0);
        for step in &self.steps {
            writeln!(
                f,
                "  {:<14} {:<width$}  {}",
                step.outcome.name(),
                step.rule.name(),
                step.detail
            )?;
        }
        match &self.decision {
            Decision::Allow(p) => {
                write!(f, "decision: allow (rule {}", p.rule())?;
                if let Some(tier) = p.tier() {
                    write!(f, ", tier {tier}")?;
                }
                write!(f, ", {} budget(s) to reserve", p.budgets().len())?;
                if let Some(usd) = p.usd_micros() {
                    write!(f, ", value {}", format_usd(usd))?;
                }
                write!(f, ")")?;
            }
            Decision::NeedsApproval(a) => write!(
                f,
                "decision: needs approval (rule {}): {} of group {} [{}], expires after {} s",
                a.rule(),
                a.required(),
                a.group(),
                a.approvers().join(", "),
                a.timeout_ms() / 1000
            )?,
            Decision::Deny(d) => {
                write!(f, "decision: deny (rule {}): {}", d.rule, d.reason)?;
                if d.trips_breaker {
                    write!(f, " [trips the circuit breaker]")?;
                }
            }
        }
        write!(f, "\npolicy version: {}", self.version)
    }
}

/// Collects steps for [`Explanation`].
#[derive(Debug, Default)]
pub(crate) struct Recorder {
    pub(crate) steps: Vec<Step>,
}

impl Tracer for Recorder {
    fn step(&mut self, rule: Rule, outcome: StepOutcome, detail: impl FnOnce() -> String) {
        self.steps.push(Step {
            rule,
            outcome,
            detail: detail(),
        });
    }
}
