//! Every rule kind: allowed, denied, and named; and the order in which they apply.

mod common;

use clawfirst_policy::{
    AgentState, BudgetCap, DAY_MS, Decision, HOUR_MS, MINUTE_MS, Measure, Rule, Usage,
};
use common::*;

const BASE: &str = r#"
[defaults]
per_transaction = { USDC = "100", SOL = "1" }
"#;

fn with(extra: &str) -> String {
    format!("{BASE}{extra}")
}

#[test]
fn no_tiers_allows_by_caps() {
    let p = policy(BASE);
    assert_eq!(allowed_by(&pay("100 USDC").decide(&p)), Rule::Caps);
}

#[test]
fn agent_state_comes_first() {
    let p = policy(BASE);
    let mut x = pay("1 USDC");
    x.state = AgentState::Suspended;
    assert_eq!(denied_by(&x.decide(&p)), Rule::AgentSuspended);
    x.state = AgentState::BreakerOpen;
    assert_eq!(denied_by(&x.decide(&p)), Rule::BreakerOpen);
}

#[test]
fn network_allowlist() {
    let p = policy(&format!("networks = [\"localnet\", \"devnet\"]\n{BASE}"));
    assert_eq!(allowed_by(&pay("1 USDC").decide(&p)), Rule::Caps);
    let mut x = pay("1 USDC");
    x.network = "mainnet".into();
    assert_eq!(denied_by(&x.decide(&p)), Rule::NetworkNotAllowed);
}

#[test]
fn asset_allowlist_defaults_to_capped_assets() {
    let p = policy(BASE);
    assert_eq!(denied_by(&pay("1 BONK").decide(&p)), Rule::AssetNotAllowed);
    let p = policy(&with("assets = [\"USDC\"]\n"));
    assert_eq!(denied_by(&pay("0.5 SOL").decide(&p)), Rule::AssetNotAllowed);
}

#[test]
fn canary_denies_trips_the_breaker_and_wins_over_the_cap() {
    let canary = address(9);
    let p = policy(&format!("canaries = [\"{canary}\"]\n{BASE}"));
    let Decision::Deny(d) = pay("5000 USDC").to(9).decide(&p) else {
        panic!("expected deny");
    };
    assert_eq!(d.rule, Rule::CanaryPayee);
    assert!(d.trips_breaker);
    assert!(
        !d.reason.contains("canary"),
        "reason does not reveal the trap: {}",
        d.reason
    );
    let Decision::Deny(over) = pay("5000 USDC").decide(&p) else {
        panic!("expected deny");
    };
    assert_eq!(over.rule, Rule::PerTransactionCap);
    assert!(!over.trips_breaker);
}

#[test]
fn agent_canaries_add_to_the_operator_canaries() {
    let text = format!(
        "canaries = [\"{}\"]\n{BASE}[agents.bot]\ncanaries = [\"{}\"]\n",
        address(8),
        address(9)
    );
    let p = policy(&text);
    assert_eq!(
        denied_by(&pay("1 USDC").to(8).decide(&p)),
        Rule::CanaryPayee
    );
    assert_eq!(
        denied_by(&pay("1 USDC").to(9).decide(&p)),
        Rule::CanaryPayee
    );
    assert_eq!(
        allowed_by(&pay("1 USDC").to(9).by("other").decide(&p)),
        Rule::Caps
    );
}

#[test]
fn blocklist_then_allowlist_by_address_or_email() {
    let text = with(&format!(
        "recipients.allow = [\"{}\", \"vendor@example.com\", \"{}\"]\n\
         recipients.block = [\"{}\"]\n",
        address(1),
        address(3),
        address(3)
    ));
    let p = policy(&text);
    assert_eq!(allowed_by(&pay("1 USDC").decide(&p)), Rule::Caps);
    assert_eq!(
        denied_by(&pay("1 USDC").to(2).decide(&p)),
        Rule::RecipientNotAllowed
    );
    assert_eq!(
        denied_by(&pay("1 USDC").to(3).decide(&p)),
        Rule::RecipientBlocked
    );
    let mut by_mail = pay("1 USDC").to(2);
    by_mail.label = Some("vendor@example.com".into());
    assert_eq!(allowed_by(&by_mail.decide(&p)), Rule::Caps);
}

#[test]
fn date_window_is_inclusive() {
    let p = policy(&with(
        "active_from = \"2026-01-05\"\nactive_until = \"2026-01-05\"\n",
    ));
    assert_eq!(allowed_by(&pay("1 USDC").decide(&p)), Rule::Caps);
    let mut x = pay("1 USDC");
    x.at_ms = MONDAY_NOON + DAY_MS;
    assert_eq!(denied_by(&x.decide(&p)), Rule::OutsideActiveDates);
    x.at_ms = MONDAY_NOON - DAY_MS;
    assert_eq!(denied_by(&x.decide(&p)), Rule::OutsideActiveDates);
}

#[test]
fn time_windows_in_a_utc_offset() {
    let p = policy(&with(
        "time_windows = [{ days = [\"mon\"], from = \"08:00\", to = \"13:00\", \
         utc_offset = \"+01:00\" }]\n",
    ));
    // Noon UTC is 13:00 local: the end is exclusive.
    assert_eq!(
        denied_by(&pay("1 USDC").decide(&p)),
        Rule::OutsideTimeWindow
    );
    let mut x = pay("1 USDC");
    x.at_ms = MONDAY_NOON - MINUTE_MS;
    assert_eq!(allowed_by(&x.decide(&p)), Rule::Caps);
}

#[test]
fn purpose_required_above_an_amount_or_usd_value() {
    let p = policy(&with("purpose_required_above = { USDC = \"10\" }\n"));
    assert_eq!(allowed_by(&pay("10 USDC").decide(&p)), Rule::Caps);
    assert_eq!(
        denied_by(&pay("10.01 USDC").decide(&p)),
        Rule::PurposeRequired
    );
    let mut x = pay("10.01 USDC");
    x.purpose = Some("   ".into());
    assert_eq!(
        denied_by(&x.decide(&p)),
        Rule::PurposeRequired,
        "blank is no purpose"
    );
    x.purpose = Some("invoice 42".into());
    assert_eq!(allowed_by(&x.decide(&p)), Rule::Caps);

    let p = policy(&format!(
        "[prices]\nSOL = \"150\"\n{BASE}purpose_required_above_usd = \"100\"\n"
    ));
    assert_eq!(allowed_by(&pay("0.6 SOL").decide(&p)), Rule::Caps);
    assert_eq!(denied_by(&pay("0.7 SOL").decide(&p)), Rule::PurposeRequired);
}

#[test]
fn per_transaction_caps_asset_then_usd() {
    let p = policy(&format!(
        "[prices]\nSOL = \"150\"\n{BASE}usd = {{ per_transaction = \"120\" }}\n"
    ));
    let Decision::Deny(d) = pay("100.000001 USDC").decide(&p) else {
        panic!("expected deny");
    };
    assert_eq!(d.rule, Rule::PerTransactionCap);
    assert_eq!(
        d.reason,
        "amount exceeds the per-transaction cap of 100 USDC"
    );
    assert_eq!(allowed_by(&pay("0.8 SOL").decide(&p)), Rule::Caps);
    let Decision::Deny(d) = pay("0.800000001 SOL").decide(&p) else {
        panic!("expected deny");
    };
    assert_eq!(
        d.rule,
        Rule::UsdPerTransactionCap,
        "120.00000015 USD rounds up past 120"
    );
    assert_eq!(
        d.reason,
        "amount exceeds the per-transaction cap of 120 USD"
    );
}

#[test]
fn rolling_and_count_caps_are_returned_as_budgets_and_checked_against_usage() {
    let p = policy(&format!(
        "[prices]\nSOL = \"150\"\n{BASE}hourly = {{ USDC = \"150\" }}\n\
         daily = {{ USDC = \"500\" }}\n\
         usd = {{ daily = \"1000\" }}\npayments = {{ per_minute = 3 }}\n"
    ));
    let Decision::Allow(permit) = pay("50 USDC").decide(&p) else {
        panic!("expected allow");
    };
    assert_eq!(
        permit.budgets(),
        &[
            BudgetCap {
                rule: Rule::HourlyCap,
                window_ms: HOUR_MS,
                cap: 150_000_000,
                measure: Measure::BaseUnits
            },
            BudgetCap {
                rule: Rule::DailyCap,
                window_ms: DAY_MS,
                cap: 500_000_000,
                measure: Measure::BaseUnits
            },
            BudgetCap {
                rule: Rule::UsdDailyCap,
                window_ms: DAY_MS,
                cap: 1_000_000_000,
                measure: Measure::UsdMicros
            },
            BudgetCap {
                rule: Rule::PaymentsPerMinute,
                window_ms: MINUTE_MS,
                cap: 3,
                measure: Measure::Count
            },
        ]
    );
    assert_eq!(permit.usd_micros(), Some(50_000_000));

    let cases = [
        (
            Usage::new().with(Measure::BaseUnits, HOUR_MS, 100_000_001),
            Rule::HourlyCap,
        ),
        (
            Usage::new().with(Measure::BaseUnits, DAY_MS, 450_000_001),
            Rule::DailyCap,
        ),
        (
            Usage::new().with(Measure::UsdMicros, DAY_MS, 950_000_001),
            Rule::UsdDailyCap,
        ),
        (
            Usage::new().with(Measure::Count, MINUTE_MS, 3),
            Rule::PaymentsPerMinute,
        ),
    ];
    for (usage, rule) in cases {
        let mut x = pay("50 USDC");
        x.usage = Some(usage);
        assert_eq!(denied_by(&x.decide(&p)), rule);
    }
    let mut x = pay("50 USDC");
    x.usage = Some(Usage::new().with(Measure::BaseUnits, HOUR_MS, 100_000_000));
    assert_eq!(
        allowed_by(&x.decide(&p)),
        Rule::Caps,
        "exactly at the cap is allowed"
    );
}

#[test]
fn first_time_recipient_allow_approve_deny() {
    let approve = format!(
        "[groups]\nfinance = [\"alice\", \"bob\"]\n{BASE}recipients.first_time = \"approve\"\n\
         approval = {{ group = \"finance\", approvals = 2, timeout = \"30m\" }}\n"
    );
    let p = policy(&approve);
    let mut x = pay("1 USDC");
    assert_eq!(allowed_by(&x.decide(&p)), Rule::Caps);
    x.first = true;
    let Decision::NeedsApproval(req) = x.decide(&p) else {
        panic!("expected approval");
    };
    assert_eq!(req.rule(), Rule::FirstTimeRecipient);
    assert_eq!(req.group(), "finance");
    assert_eq!(req.approvers(), ["alice".to_owned(), "bob".to_owned()]);
    assert_eq!((req.required(), req.timeout_ms()), (2, 30 * MINUTE_MS));

    let p = policy(&with("recipients.first_time = \"deny\"\n"));
    assert_eq!(denied_by(&x.decide(&p)), Rule::FirstTimeRecipient);
}

#[test]
fn defer_until_approval_needs_approvers() {
    let mut x = pay("1 USDC");
    x.defer = true;
    assert_eq!(denied_by(&x.decide(&policy(BASE))), Rule::ApprovalRequested);
    let p = policy(&format!(
        "[groups]\nops = [\"carol\"]\n{BASE}approval = {{ group = \"ops\" }}\n"
    ));
    let Decision::NeedsApproval(req) = x.decide(&p) else {
        panic!("expected approval");
    };
    assert_eq!(
        (req.rule(), req.required(), req.timeout_ms()),
        (Rule::ApprovalRequested, 1, HOUR_MS)
    );
}

#[test]
fn per_agent_override_merges_per_asset_and_replaces_the_rest() {
    let p = policy(&with(
        "daily = { USDC = \"500\" }\n[agents.strict]\nper_transaction = { USDC = \"5\" }\n\
         assets = [\"USDC\"]\n",
    ));
    assert_eq!(
        denied_by(&pay("6 USDC").by("strict").decide(&p)),
        Rule::PerTransactionCap
    );
    assert_eq!(allowed_by(&pay("6 USDC").decide(&p)), Rule::Caps);
    assert_eq!(
        denied_by(&pay("0.5 SOL").by("strict").decide(&p)),
        Rule::AssetNotAllowed
    );
    let Decision::Allow(permit) = pay("5 USDC").by("strict").decide(&p) else {
        panic!("expected allow");
    };
    assert_eq!(permit.budgets().len(), 1, "inherits the default daily cap");
    assert!(p.has_override(&agent("strict")) && !p.has_override(&agent("bot")));
}
