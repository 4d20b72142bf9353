//! [`Policy`]: loading, the version, and the public entry points.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;

use clawfirst_core::AgentId;

use crate::check::lint;
use crate::compile::Compiled;
use crate::decision::{Decision, PaymentFacts, PolicyVersion};
use crate::error::PolicyFileError;
use crate::evaluate::Silent;
use crate::explain::{Explanation, Recorder};
use crate::file::{self, Context};
use crate::model::Spec;

/// The operator's policy, checked and compiled for evaluation. Immutable: a new file makes a
/// new `Policy` with a new [`PolicyVersion`].
#[derive(Debug)]
pub struct Policy {
    pub(crate) spec: Spec,
    pub(crate) version: PolicyVersion,
    pub(crate) networks: Option<HashSet<String>>,
    pub(crate) defaults: Arc<Compiled>,
    pub(crate) agents: HashMap<AgentId, Arc<Compiled>>,
}

/// A loaded policy and what the static check found in it.
#[derive(Debug)]
#[non_exhaustive]
pub struct LoadedPolicy {
    /// The policy, ready to evaluate.
    pub policy: Policy,
    /// Rules that can never fire or are shadowed; the policy is usable regardless.
    pub warnings: Vec<Warning>,
}

/// A finding of the static check: the field and why its rule never fires or is shadowed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Warning {
    /// The dotted path of the field.
    pub field: String,
    /// What is wrong.
    pub message: String,
}

impl std::fmt::Display for Warning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

impl Policy {
    /// Reads, checks and compiles a policy file. This is the crate's only I/O.
    ///
    /// # Errors
    /// [`PolicyFileError::Read`] when the file cannot be read; otherwise as
    /// [`Policy::from_toml_str`].
    pub fn load(path: &Path) -> Result<LoadedPolicy, PolicyFileError> {
        let origin = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| PolicyFileError::Read {
            origin: origin.clone(),
            source,
        })?;
        Self::from_toml_str(&text, &origin)
    }

    /// Checks and compiles a policy from TOML text; `origin` names it in errors (a path, or
    /// something like `<inline>`). Never panics, whatever the text.
    ///
    /// # Errors
    /// [`PolicyFileError::Syntax`] with line and column for malformed TOML or an unknown key,
    /// [`PolicyFileError::Invalid`] with the dotted field for an invalid value.
    pub fn from_toml_str(text: &str, origin: &str) -> Result<LoadedPolicy, PolicyFileError> {
        let spec = file::parse(text, origin)?;
        let warnings = lint(&spec);
        Ok(LoadedPolicy {
            policy: Self::compile(spec),
            warnings,
        })
    }

    fn compile(spec: Spec) -> Self {
        let empty = BTreeSet::new();
        let ctx = Context {
            prices: &spec.prices,
            groups: &spec.groups,
            canaries: &empty,
        };
        let defaults = Arc::new(Compiled::new(spec.defaults.clone(), &ctx));
        let agents = spec
            .agents
            .iter()
            .map(|(id, rules)| {
                let compiled = if *rules == spec.defaults {
                    Arc::clone(&defaults)
                } else {
                    Arc::new(Compiled::new(rules.clone(), &ctx))
                };
                (id.clone(), compiled)
            })
            .collect();
        Self {
            version: spec.version(),
            networks: spec.networks.as_ref().map(|n| n.iter().cloned().collect()),
            defaults,
            agents,
            spec,
        }
    }

    /// The SHA-256 of the checked policy's canonical form.
    pub fn version(&self) -> PolicyVersion {
        self.version
    }

    /// Whether `agent_id` has its own override (otherwise it gets the defaults).
    pub fn has_override(&self, agent_id: &AgentId) -> bool {
        self.spec.agents.contains_key(agent_id)
    }

    /// Whether the agent's rules treat a recipient it never paid differently, so the caller
    /// must look up [`PaymentFacts::first_payment_to_recipient`]; when not, the fact does not
    /// change the decision and the lookup can be skipped.
    pub fn uses_recipient_history(&self, agent_id: &AgentId) -> bool {
        !matches!(
            self.compiled_for(agent_id).rules.first_time,
            crate::raw::FirstTime::Allow
        )
    }

    /// Evaluates one payment: deterministic, ordered, fail-closed; see the crate docs for the
    /// order. Denials are logged at info with the rule, other decisions at debug.
    pub fn evaluate(&self, facts: &PaymentFacts<'_>) -> Decision {
        let decision = self.run(facts, &mut Silent);
        log(facts, &decision);
        decision
    }

    /// Evaluates one payment and records every step: the same [`Decision`] as
    /// [`Policy::evaluate`], plus the trace.
    pub fn explain(&self, facts: &PaymentFacts<'_>) -> Explanation {
        let mut recorder = Recorder::default();
        let decision = self.run(facts, &mut recorder);
        Explanation::new(decision, recorder.steps, self.version)
    }

    pub(crate) fn compiled_for(&self, agent_id: &AgentId) -> &Compiled {
        self.agents.get(agent_id).unwrap_or(&self.defaults)
    }
}

fn log(facts: &PaymentFacts<'_>, decision: &Decision) {
    match decision {
        Decision::Deny(denial) => tracing::info!(
            agent.id = %facts.agent_id,
            policy.rule = denial.rule.name(),
            policy.version = %denial.policy_version,
            policy.trips_breaker = denial.trips_breaker,
            "payment denied by policy"
        ),
        Decision::NeedsApproval(req) => tracing::debug!(
            agent.id = %facts.agent_id,
            policy.rule = req.rule().name(),
            approval.group = req.group(),
            approval.required = req.required(),
            "payment needs approval"
        ),
        Decision::Allow(permit) => tracing::debug!(
            agent.id = %facts.agent_id,
            policy.rule = permit.rule().name(),
            "payment allowed by policy"
        ),
    }
}
