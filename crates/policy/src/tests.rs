use super::*;

fn agent(id: &str) -> AgentId {
    AgentId::new(id).unwrap_or_else(|_| unreachable!("valid test id"))
}

fn usdc(units: u64) -> Amount {
    Amount::from_base_units(Asset::Usdc, units).unwrap_or_else(|_| unreachable!("non-zero"))
}

fn policy() -> Policy {
    let defaults = Limits {
        per_transaction: [(Asset::Usdc, 100_000_000)].into(),
        daily: [(Asset::Usdc, 500_000_000)].into(),
    };
    let strict = Limits {
        per_transaction: [(Asset::Usdc, 1_000_000)].into(),
        ..Limits::default()
    };
    Policy::new(defaults, [(agent("strict"), strict)].into())
        .unwrap_or_else(|e| unreachable!("valid policy: {e}"))
}

#[test]
fn allows_within_the_cap_and_carries_the_daily_budget() {
    let a = agent("a");
    let Decision::Allow(permit) = policy().evaluate(&PaymentFacts {
        agent_id: &a,
        amount: usdc(100_000_000),
    }) else {
        panic!("expected allow");
    };
    assert_eq!(
        permit.budgets(),
        &[BudgetCap {
            rule: Rule::DailyCap,
            window_ms: DAY_MS,
            cap: 500_000_000
        }]
    );
    assert_eq!(permit.policy_version(), policy().version());
}

#[test]
fn denies_above_the_per_transaction_cap_naming_the_rule() {
    let a = agent("a");
    let decision = policy().evaluate(&PaymentFacts {
        agent_id: &a,
        amount: usdc(100_000_001),
    });
    let Decision::Deny(denial) = decision else {
        panic!("expected deny")
    };
    assert_eq!(denial.rule, Rule::PerTransactionCap);
    assert!(denial.reason.contains("100 USDC"), "{}", denial.reason);
}

#[test]
fn agent_override_applies_and_inherits_the_rest() {
    let s = agent("strict");
    let d = policy().evaluate(&PaymentFacts {
        agent_id: &s,
        amount: usdc(2_000_000),
    });
    assert!(matches!(
        d,
        Decision::Deny(Denial {
            rule: Rule::PerTransactionCap,
            ..
        })
    ));
    assert_eq!(
        policy().limits_for(&s).daily.get(&Asset::Usdc),
        Some(&500_000_000)
    );
}

#[test]
fn unconfigured_asset_is_denied() {
    let a = agent("a");
    let sol = Amount::from_base_units(Asset::Sol, 1).unwrap_or_else(|_| unreachable!());
    let d = policy().evaluate(&PaymentFacts {
        agent_id: &a,
        amount: sol,
    });
    assert!(matches!(
        d,
        Decision::Deny(Denial {
            rule: Rule::AssetNotConfigured,
            ..
        })
    ));
}

#[test]
fn inconsistent_caps_are_refused() {
    let zero = Limits {
        per_transaction: [(Asset::Sol, 0)].into(),
        ..Limits::default()
    };
    assert!(matches!(
        Policy::new(zero, BTreeMap::new()),
        Err(PolicyError::ZeroCap { .. })
    ));
    let above = Limits {
        per_transaction: [(Asset::Sol, 10)].into(),
        daily: [(Asset::Sol, 5)].into(),
    };
    assert!(matches!(
        Policy::new(above, BTreeMap::new()),
        Err(PolicyError::PerTransactionAboveDaily { .. })
    ));
}

#[test]
fn version_changes_with_content() {
    let other = Policy::new(Limits::default(), BTreeMap::new()).unwrap_or_else(|_| unreachable!());
    assert_ne!(other.version(), policy().version());
}
