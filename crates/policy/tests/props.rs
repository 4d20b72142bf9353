//! Property tests: explain agrees with evaluate; loading never panics.

mod common;

use clawfirst_core::{Address, AgentId, Amount, Asset};
use clawfirst_policy::{AgentState, DAY_MS, HOUR_MS, Measure, PaymentFacts, Policy, Usage};
use proptest::prelude::*;

fn rich_policy() -> String {
    format!(
        r#"
networks = ["devnet", "localnet"]
canaries = ["{canary}"]
[prices]
SOL = "150.25"
BONK = "0.0000231"
[groups]
finance = ["alice", "bob", "carol"]
ops = ["dave"]
[defaults]
per_transaction = {{ USDC = "100", SOL = "1", BONK = "1000000" }}
hourly = {{ USDC = "200" }}
daily = {{ USDC = "1000", SOL = "10" }}
usd = {{ per_transaction = "120", daily = "2000" }}
payments = {{ per_minute = 30 }}
recipients.block = ["{blocked}"]
recipients.first_time = "approve"
purpose_required_above = {{ USDC = "10" }}
time_windows = [
{{ days = ["mon","tue","wed","thu","fri"], from = "08:00", to = "18:00", utc_offset = "+01:00" }},
{{ days = ["sat"], from = "22:00", to = "02:00" }},
]
active_from = "2026-01-01"
active_until = "2027-12-31"
approval = {{ group = "ops" }}
[[defaults.tiers]]
name = "small"
up_to = {{ USDC = "10", SOL = "0.1" }}
action = "allow"
[[defaults.tiers]]
name = "large"
up_to_usd = "100"
action = "approve"
group = "finance"
approvals = 2
[[defaults.tiers]]
name = "too_large"
action = "deny"
[agents.a1]
per_transaction = {{ USDC = "5" }}
recipients.allow = ["{allowed}", "vendor@example.com"]
"#,
        canary = Address::new([9; 32]),
        blocked = Address::new([8; 32]),
        allowed = Address::new([1; 32]),
    )
}

static POLICY: std::sync::LazyLock<Policy> = std::sync::LazyLock::new(
    || match Policy::from_toml_str(&rich_policy(), "rich.toml") {
        Ok(loaded) => loaded.policy,
        Err(e) => panic!("{e}"),
    },
);

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn explain_decides_as_evaluate(
        agent in prop_oneof![Just("a1"), Just("a2")],
        state in prop_oneof![
            8 => Just(AgentState::Active),
            1 => Just(AgentState::Suspended),
            1 => Just(AgentState::BreakerOpen)
        ],
        network in prop_oneof![Just("devnet"), Just("mainnet")],
        asset in prop_oneof![Just(Asset::Usdc), Just(Asset::Sol), Just(Asset::Bonk)],
        units in 1u64..200_000_000_000,
        recipient in 0u8..12,
        label in proptest::option::of(Just("vendor@example.com")),
        purpose in proptest::option::of(Just("invoice")),
        first in any::<bool>(),
        defer in any::<bool>(),
        at_ms in 1_767_225_600_000u64..1_830_000_000_000,
        used in proptest::option::of(0u64..2_000_000_000),
    ) {
        let policy = &*POLICY;
        let agent_id = AgentId::new(agent).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let amount = Amount::from_base_units(asset, units)
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        let recipient = Address::new([recipient; 32]);
        let usage = used.map(|u| {
            Usage::new()
                .with(Measure::BaseUnits, HOUR_MS, u)
                .with(Measure::UsdMicros, DAY_MS, u)
        });
        let facts = PaymentFacts {
            agent_id: &agent_id,
            agent_state: state,
            network,
            amount,
            recipient: &recipient,
            recipient_label: label,
            purpose,
            first_payment_to_recipient: first,
            defer_until_approval: defer,
            at_ms,
            usage: usage.as_ref(),
        };
        let explanation = policy.explain(&facts);
        prop_assert_eq!(explanation.decision(), &policy.evaluate(&facts));
        prop_assert_eq!(explanation.steps().last().map(|s| s.rule).is_some(), true);
        prop_assert!(!explanation.to_string().is_empty());
    }

    #[test]
    fn loading_random_text_never_panics(text in "\\PC{0,200}") {
        let _ = Policy::from_toml_str(&text, "random.toml");
    }

    #[test]
    fn loading_a_mutated_valid_file_never_panics(
        edits in proptest::collection::vec(
            (any::<prop::sample::Index>(), 0usize..4, "\\PC{0,6}"),
            1..6,
        ),
    ) {
        let mut text = rich_policy();
        for (at, kind, piece) in edits {
            let mut i = at.index(text.len().max(1));
            while !text.is_char_boundary(i) {
                i -= 1;
            }
            match kind {
                0 => text.insert_str(i, &piece),
                1 => {
                    let mut end = (i + piece.len().max(1)).min(text.len());
                    while !text.is_char_boundary(end) {
                        end += 1;
                    }
                    text.replace_range(i..end, "");
                }
                2 => text.replace_range(i..i, "0"),
                _ => text.replace_range(i..i, "\n[agents.x]\n"),
            }
        }
        let _ = Policy::from_toml_str(&text, "mutated.toml");
    }
}
