//! The names of the rules, as decisions, audit records and operators see them.

use std::fmt;

use serde::Serialize;

/// One minute in milliseconds.
pub const MINUTE_MS: u64 = 60 * 1000;
/// One hour in milliseconds: the window of `hourly` caps.
pub const HOUR_MS: u64 = 60 * MINUTE_MS;
/// One day in milliseconds: the window of `daily` caps.
pub const DAY_MS: u64 = 24 * HOUR_MS;
/// One week in milliseconds: the window of `weekly` caps.
pub const WEEK_MS: u64 = 7 * DAY_MS;
/// Thirty days in milliseconds: the window of `monthly` caps.
pub const MONTH_MS: u64 = 30 * DAY_MS;

/// A rule of the policy. [`Rule::name`] is stable: it is recorded in audit trails and may be
/// matched on by operators' tooling.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Rule {
    /// The agent is suspended.
    AgentSuspended,
    /// The agent's circuit breaker is open.
    BreakerOpen,
    /// The network is not in the allowlist.
    NetworkNotAllowed,
    /// The asset is not in the agent's asset allowlist.
    AssetNotAllowed,
    /// The recipient is a canary payee: denied, and the breaker trips.
    CanaryPayee,
    /// The recipient is blocked.
    RecipientBlocked,
    /// A recipient allowlist exists and does not name the recipient.
    RecipientNotAllowed,
    /// Outside `active_from` ..= `active_until`.
    OutsideActiveDates,
    /// Outside every configured time-of-day window.
    OutsideTimeWindow,
    /// The amount needs a stated purpose and none was given.
    PurposeRequired,
    /// The per-transaction cap of the asset.
    PerTransactionCap,
    /// The per-transaction cap in USD.
    UsdPerTransactionCap,
    /// The rolling hourly cap of the asset.
    HourlyCap,
    /// The rolling daily cap of the asset.
    DailyCap,
    /// The rolling weekly cap of the asset.
    WeeklyCap,
    /// The rolling 30-day cap of the asset.
    MonthlyCap,
    /// The rolling hourly cap in USD over all assets.
    UsdHourlyCap,
    /// The rolling daily cap in USD over all assets.
    UsdDailyCap,
    /// The rolling weekly cap in USD over all assets.
    UsdWeeklyCap,
    /// The rolling 30-day cap in USD over all assets.
    UsdMonthlyCap,
    /// Payments per rolling minute.
    PaymentsPerMinute,
    /// Payments per rolling hour.
    PaymentsPerHour,
    /// Payments per rolling day.
    PaymentsPerDay,
    /// Payments per rolling week.
    PaymentsPerWeek,
    /// Payments per rolling 30 days.
    PaymentsPerMonth,
    /// The rule for recipients the agent never paid before.
    FirstTimeRecipient,
    /// An amount tier.
    Tier,
    /// The agent asked for human approval (`defer_until_approval`).
    ApprovalRequested,
    /// Allowed by the caps alone: no tiers are configured.
    Caps,
}

impl Rule {
    /// The rule's stable snake_case name.
    pub const fn name(self) -> &'static str {
        match self {
            Rule::AgentSuspended => "agent_suspended",
            Rule::BreakerOpen => "breaker_open",
            Rule::NetworkNotAllowed => "network_not_allowed",
            Rule::AssetNotAllowed => "asset_not_allowed",
            Rule::CanaryPayee => "canary_payee",
            Rule::RecipientBlocked => "recipient_blocked",
            Rule::RecipientNotAllowed => "recipient_not_allowed",
            Rule::OutsideActiveDates => "outside_active_dates",
            Rule::OutsideTimeWindow => "outside_time_window",
            Rule::PurposeRequired => "purpose_required",
            Rule::PerTransactionCap => "per_transaction_cap",
            Rule::UsdPerTransactionCap => "usd_per_transaction_cap",
            Rule::HourlyCap => "hourly_cap",
            Rule::DailyCap => "daily_cap",
            Rule::WeeklyCap => "weekly_cap",
            Rule::MonthlyCap => "monthly_cap",
            Rule::UsdHourlyCap => "usd_hourly_cap",
            Rule::UsdDailyCap => "usd_daily_cap",
            Rule::UsdWeeklyCap => "usd_weekly_cap",
            Rule::UsdMonthlyCap => "usd_monthly_cap",
            Rule::PaymentsPerMinute => "payments_per_minute",
            Rule::PaymentsPerHour => "payments_per_hour",
            Rule::PaymentsPerDay => "payments_per_day",
            Rule::PaymentsPerWeek => "payments_per_week",
            Rule::PaymentsPerMonth => "payments_per_month",
            Rule::FirstTimeRecipient => "first_time_recipient",
            Rule::Tier => "tier",
            Rule::ApprovalRequested => "approval_requested",
            Rule::Caps => "caps",
        }
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A rolling window of the file: its key, length and the rules of its asset, USD and count caps.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Window {
    pub(crate) key: &'static str,
    pub(crate) ms: u64,
    pub(crate) asset_rule: Rule,
    pub(crate) usd_rule: Rule,
}

/// `hourly`, `daily`, `weekly`, `monthly`, in the order budgets are listed.
pub(crate) const WINDOWS: [Window; 4] = [
    Window {
        key: "hourly",
        ms: HOUR_MS,
        asset_rule: Rule::HourlyCap,
        usd_rule: Rule::UsdHourlyCap,
    },
    Window {
        key: "daily",
        ms: DAY_MS,
        asset_rule: Rule::DailyCap,
        usd_rule: Rule::UsdDailyCap,
    },
    Window {
        key: "weekly",
        ms: WEEK_MS,
        asset_rule: Rule::WeeklyCap,
        usd_rule: Rule::UsdWeeklyCap,
    },
    Window {
        key: "monthly",
        ms: MONTH_MS,
        asset_rule: Rule::MonthlyCap,
        usd_rule: Rule::UsdMonthlyCap,
    },
];

/// The keys of `payments`, their windows and rules, shortest first.
pub(crate) const COUNT_WINDOWS: [(&str, u64, Rule); 5] = [
    ("per_minute", MINUTE_MS, Rule::PaymentsPerMinute),
    ("per_hour", HOUR_MS, Rule::PaymentsPerHour),
    ("per_day", DAY_MS, Rule::PaymentsPerDay),
    ("per_week", WEEK_MS, Rule::PaymentsPerWeek),
    ("per_month", MONTH_MS, Rule::PaymentsPerMonth),
];
