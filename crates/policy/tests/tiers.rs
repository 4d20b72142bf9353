//! Tiers and the merge of approval requirements.

mod common;

use clawfirst_policy::{Decision, Rule};
use common::*;

const TIERS: &str = r#"
[prices]
SOL = "100"

[groups]
finance = ["alice", "bob", "carol"]
ops = ["dave"]

[defaults]
per_transaction = { USDC = "10000", SOL = "100" }
approval = { group = "ops" }

[[defaults.tiers]]
name = "small"
up_to = { USDC = "10", SOL = "0.1" }
action = "allow"

[[defaults.tiers]]
name = "large"
up_to_usd = "5000"
action = "approve"
group = "finance"
approvals = 2
timeout = "30m"

[[defaults.tiers]]
name = "too_large"
action = "deny"
"#;

#[test]
fn first_fitting_tier_decides() {
    let p = policy(TIERS);
    let Decision::Allow(permit) = pay("10 USDC").decide(&p) else {
        panic!("expected allow");
    };
    assert_eq!((permit.rule(), permit.tier()), (Rule::Tier, Some("small")));

    let Decision::NeedsApproval(req) = pay("10.5 USDC").decide(&p) else {
        panic!("expected approval");
    };
    assert_eq!(
        (req.rule(), req.tier(), req.required()),
        (Rule::Tier, Some("large"), 2)
    );
    assert_eq!(req.usd_micros(), Some(10_500_000));

    let Decision::Deny(d) = pay("5000.01 USDC").decide(&p) else {
        panic!("expected deny");
    };
    assert_eq!((d.rule, d.tier.as_deref()), (Rule::Tier, Some("too_large")));
    assert_eq!(allowed_by(&pay("0.1 SOL").decide(&p)), Rule::Tier);
}

#[test]
fn strictest_requirement_wins_and_ties_keep_the_earliest() {
    let p = policy(TIERS);
    // First-time (1 of ops) and tier "large" (2 of finance): the tier is stricter.
    let mut x = pay("20 USDC");
    x.first = false;
    x.defer = true;
    let Decision::NeedsApproval(req) = x.decide(&p) else {
        panic!("expected approval");
    };
    assert_eq!((req.rule(), req.group()), (Rule::Tier, "finance"));

    // A small amount the agent defers: only its own request asks, 1 of ops.
    let mut x = pay("1 USDC");
    x.defer = true;
    let Decision::NeedsApproval(req) = x.decide(&p) else {
        panic!("expected approval");
    };
    assert_eq!(
        (req.rule(), req.tier(), req.group()),
        (Rule::ApprovalRequested, Some("small"), "ops")
    );

    let text = TIERS.replace(
        "[defaults]",
        "[defaults]\nrecipients.first_time = \"approve\"",
    );
    let p = policy(&text);
    let mut x = pay("1 USDC");
    x.first = true;
    x.defer = true;
    let Decision::NeedsApproval(req) = x.decide(&p) else {
        panic!("expected approval");
    };
    assert_eq!(
        req.rule(),
        Rule::FirstTimeRecipient,
        "a tie keeps the earlier rule"
    );
}

#[test]
fn denial_wins_over_needed_approval() {
    let text = TIERS.replace(
        "[defaults]",
        "[defaults]\nrecipients.first_time = \"approve\"",
    );
    let mut x = pay("6000 USDC");
    x.first = true;
    assert_eq!(denied_by(&x.decide(&policy(&text))), Rule::Tier);
}

#[test]
fn an_amount_no_tier_covers_is_denied() {
    let text = TIERS.replace(
        "name = \"too_large\"\naction = \"deny\"",
        "name = \"mid\"\nup_to = { USDC = \"6000\" }\naction = \"allow\"",
    );
    let p = policy(&text);
    assert_eq!(allowed_by(&pay("5500 USDC").decide(&p)), Rule::Tier);
    assert_eq!(denied_by(&pay("6001 USDC").decide(&p)), Rule::Tier);
    // SOL is bounded by "small" (0.1) and "large" (5000 USD = 50 SOL) only.
    assert_eq!(denied_by(&pay("51 SOL").decide(&p)), Rule::Tier);
}

#[test]
fn explain_reads_as_an_ordered_trace() {
    let p = policy(TIERS);
    let mut x = pay("20 USDC");
    x.first = true;
    let explanation = p.explain(&x.facts());
    let text = explanation.to_string();
    let lines: Vec<&str> = text.lines().collect();
    let expected = [
        "  pass           agent_suspended        agent is active",
        "  not_configured network_not_allowed    every network is allowed",
        "  pass           asset_not_allowed      USDC is allowed",
        "  pass           canary_payee           recipient is not a canary payee",
        "  pass           recipient_blocked      recipient is not blocked",
        "  not_configured recipient_not_allowed  no recipient allowlist",
        "  not_configured outside_active_dates   no date window",
        "  not_configured outside_time_window    no time-of-day window",
        "  not_configured purpose_required       no purpose needed for this amount",
        "  pass           per_transaction_cap    within 10000 USDC",
        "  pass           first_time_recipient   first payment to this recipient is allowed",
        "  needs_approval tier                   tier large: 2 of group finance within 1800 s",
        "decision: needs approval (rule tier): \
         2 of group finance [alice, bob, carol], expires after 1800 s",
    ];
    assert_eq!(&lines[..lines.len() - 1], expected);
    assert_eq!(
        lines.last().copied(),
        Some(format!("policy version: {}", p.version()).as_str())
    );
}
