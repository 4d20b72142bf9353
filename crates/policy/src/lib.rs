//! The approval layer's policy engine.
//!
//! An operator writes a policy file (TOML). [`Policy::load`] reads it once, checks every value
//! into typed rules (raw serde layer, then a checked model), compiles each agent's effective
//! rules for fast evaluation, hashes the checked policy into a [`PolicyVersion`], and runs a
//! static check whose [`Warning`]s name rules that can never fire. [`Policy::evaluate`] is then
//! a pure function from the policy and the facts of one payment ([`PaymentFacts`]) to a
//! [`Decision`]: no clock, no I/O, the same answer every time. [`Policy::explain`] returns the
//! same decision with the ordered trace of the rules it met.
//!
//! # Security
//!
//! - Approval is a value: [`Permit`] and [`ApprovalRequirement`] have private fields and no
//!   public constructor, so only this crate can say yes (or "yes, once approved").
//! - Fail closed: an asset without a per-transaction cap is not allowed; a USD rule whose value
//!   cannot be computed denies; an amount no tier covers is denied; an agent that asks for
//!   approval when no approvers are configured is denied.
//! - A denial always wins over a need for approval; a canary payee denies and sets
//!   [`Denial::trips_breaker`].
//! - Denial reasons tell the agent what to do without revealing the rest of the policy (a canary
//!   payee reads like any refused recipient; the rule name is for the audit trail).
//! - No floating point: amounts are integer base units, prices integer nano-USD per whole unit,
//!   USD values integer micro-USD; conversions multiply in `u128` and round up, so a cap is never
//!   passed by rounding, and a value beyond `u64` is refused.
//! - Rolling caps are returned as [`BudgetCap`]s to reserve atomically in the store; checking
//!   them here against a [`Usage`] snapshot is advisory (for `explain` and early refusals).
//! - Logged: denials at info with `agent.id` and `policy.rule`, other decisions at debug. Never
//!   logged: amounts, recipients, purposes.
//! - The only I/O is [`Policy::load`] reading the file; [`Policy::from_toml_str`] never panics.
//!
//! # Evaluation order
//!
//! 1. agent state (`agent_suspended`, `breaker_open`); 2. `network_not_allowed`;
//! 3. `asset_not_allowed`; 4. `canary_payee`; 5. `recipient_blocked`; 6. `recipient_not_allowed`;
//! 7. `outside_active_dates`, `outside_time_window`; 8. `purpose_required`;
//! 9. `per_transaction_cap`, `usd_per_transaction_cap`; 10. rolling caps (`hourly_cap` ..
//!    `monthly_cap`, `usd_hourly_cap` .. `usd_monthly_cap`, `payments_per_minute` ..
//!    `payments_per_month`); 11. `first_time_recipient`; 12. `tier`; 13. `approval_requested`.
//!
//! The first denial ends the evaluation. Steps 11 to 13 may each require approval; the
//! requirement with the most approvals wins, and on a tie the earliest in this order. A payment
//! that passes with no tiers configured is allowed by the rule `caps`.
//!
//! # The policy file
//!
//! Amounts are whole-unit decimal strings (`"2.5"`) under the asset's name, with the strict
//! rules of [`clawfirst_core::Amount`]. Prices and USD values are decimal strings, no sign,
//! exponent or separator (prices up to 9 decimals, USD up to 6). Durations are a whole number
//! and `s`, `m`, `h` or `d`. Unknown keys are errors.
//!
//! | key | default | meaning and security consequence |
//! |---|---|---|
//! | `networks` | every network | network allowlist; others are denied |
//! | `canaries` | none | operator-wide canary payees: any attempt denies and trips the breaker |
//! | `prices.<ASSET>` | none | USD per whole unit; USDC is always 1 (another value is an error) |
//! | `groups.<name>` | none | approver names of a group (non-empty); keys are held by the server |
//! | `defaults.assets` | assets with a `per_transaction` cap | asset allowlist |
//! | `defaults.per_transaction.<ASSET>` | none | most one payment may move |
//! | `defaults.<window>.<ASSET>` | none | rolling caps per asset |
//! | `defaults.usd.<cap>` | none | the per-transaction and rolling caps in USD over all assets |
//! | `defaults.payments.<per>` | none | payment-count caps over all assets |
//! | `defaults.recipients.allow` | empty (any) | if non-empty only these may be paid |
//! | `defaults.recipients.block` | empty | addresses or e-mails never paid; wins over `allow` |
//! | `defaults.recipients.first_time` | `"allow"` | `"approve"` or `"deny"`: see below |
//! | `defaults.purpose_required_above.<ASSET>` | none | above this the agent must state a purpose |
//! | `defaults.purpose_required_above_usd` | none | the same in USD |
//! | `defaults.time_windows` | always | list of `{ days, from, to, utc_offset }` |
//! | `defaults.active_from` / `active_until` | unbounded | inclusive UTC dates `YYYY-MM-DD` |
//! | `defaults.approval` | none | `{ group, approvals = 1, timeout = "1h" }`: who approves |
//! | `defaults.tiers` | none | ordered `[[tiers]]`; the first tier the payment fits wins |
//! | `defaults.canaries` | none | more canary payees, added to the operator-wide ones |
//! | `agents.<id>.*` | the defaults | any `defaults` key, merged with the defaults as below |
//!
//! Notes on the keys above:
//!
//! - `prices`: a rule set that uses USD rules needs a price for every asset it allows.
//! - `assets`: every listed asset needs a `per_transaction` cap; an asset without one is not
//!   allowed.
//! - `<window>` is `hourly`, `daily`, `weekly` or `monthly`: rolling caps over 1 h, 24 h, 7 d and
//!   30 d that count reserved but unsettled payments; none may be below the per-transaction cap.
//! - `usd.<cap>`: `<cap>` is `per_transaction`, `hourly`, `daily`, `weekly` or `monthly`.
//! - `payments.<per>`: `<per>` is `per_minute`, `per_hour`, `per_day`, `per_week` or
//!   `per_month`.
//! - `recipients.allow` lists addresses or directory e-mails.
//! - `recipients.first_time` applies to a recipient the agent never paid; `"approve"` needs an
//!   `approval` table.
//! - `time_windows`: a payment must fall in one window; `to` is exclusive, `24:00` is allowed;
//!   `from > to` wraps midnight into the next day; `utc_offset` defaults to `+00:00`.
//! - `approval` names who approves first-time recipients and payments the agent defers.
//! - `tiers`: each has a `name`, `up_to = { ASSET = amount }` and/or `up_to_usd`, and an
//!   `action` of `allow`, `approve` or `deny`; an `approve` tier also takes `group`, `approvals`
//!   and `timeout`, each defaulting to the `approval` table's. A payment fits a tier when it is
//!   within every bound set, and an asset not named in `up_to` does not fit; a tier with no bound
//!   is a catch-all; a payment no tier fits is denied.
//! - `agents.<id>`: per-asset maps and the `usd`, `payments` and `recipients` tables merge with
//!   the defaults key by key, `canaries` add up, anything else replaces the default.
//!
//! Without tiers, every payment that passes the other rules is allowed (rule `caps`).

#![forbid(unsafe_code)]

mod approve;
mod check;
mod compile;
mod decimal;
mod decision;
mod error;
mod evaluate;
mod explain;
mod file;
mod model;
mod policy;
mod raw;
mod rule;
mod rules;
mod tiers;
mod usd;
mod window;

pub use decision::{
    AgentState, ApprovalRequirement, BudgetCap, Decision, Denial, Measure, PaymentFacts, Permit,
    PolicyVersion, Usage,
};
pub use error::PolicyFileError;
pub use explain::{Explanation, Step, StepOutcome};
pub use policy::{LoadedPolicy, Policy, Warning};
pub use rule::{DAY_MS, HOUR_MS, MINUTE_MS, MONTH_MS, Rule, WEEK_MS};
