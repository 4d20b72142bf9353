//! Numbers that do not fit the database are refused, never wrapped.

use clawfirst_core::Asset;
use clawfirst_store::{Reservation, StoreError};

use crate::support::*;

#[tokio::test]
async fn amounts_above_i64_max_are_refused_with_a_clear_error() -> TestResult {
    let db = TestDb::new()?;
    let store = db.open().await?;
    let agent = add_agent(&store, "agent-1").await?;
    let audit_before = store.audit_len().await?;

    for amount in [i64::MAX as u64 + 1, u64::MAX] {
        let refused = store
            .create_session(
                new_session(&agent, "ps_huge", amount)?,
                agent_event(&agent, "tool.initialize_payment", T0),
            )
            .await;

        let Err(error) = refused else {
            return Err(format!("amount {amount} was accepted").into());
        };
        assert!(
            matches!(error, StoreError::OutOfRange { field: "amount", value } if value == amount)
        );
        assert_eq!(
            error.to_string(),
            format!("amount {amount} exceeds the largest storable value 9223372036854775807")
        );
    }
    assert!(store.session(&session_id("ps_huge")?).await?.is_none());
    assert_eq!(store.audit_len().await?, audit_before);
    Ok(())
}

#[tokio::test]
async fn the_largest_storable_amount_round_trips_and_sums_do_not_wrap() -> TestResult {
    let db = TestDb::new()?;
    let store = db.open().await?;
    let agent = add_agent(&store, "agent-1").await?;
    let max = i64::MAX as u64;
    // A one-millisecond window, so each reservation is alone in its window when it is made.
    let tiny_window = || Reservation::default().window("per_ms_cap", 1, max);
    for (i, at) in [T0, T0 + 10, T0 + 20].into_iter().enumerate() {
        let id = create(&store, new_session(&agent, &format!("ps_{i}"), max)?).await?;
        reserve(&store, &id, APPROVE, tiny_window(), at).await??;
        assert_eq!(store.session(&id).await?.map(|s| s.amount), Some(max));
    }

    // Three times i64::MAX does not fit in u64: reported, not wrapped.
    let usage = store.budget_usage(&agent, Asset::Sol, 0).await;
    assert!(
        matches!(usage, Err(StoreError::UsageOverflow { .. })),
        "{usage:?}"
    );
    // Two times i64::MAX does.
    assert_eq!(
        store.budget_usage(&agent, Asset::Sol, T0 + 10).await?,
        2 * max
    );

    // Against a cap over all time, the sum is compared exactly.
    let id = create(&store, new_session(&agent, "ps_one_more", 1)?).await?;
    let forever = Reservation::default().window("lifetime_cap", u64::MAX, u64::MAX);
    let refused = reserve(&store, &id, APPROVE, forever, T0 + 30).await?;
    assert_eq!(
        refused.map_err(|e| e.used),
        Err(u64::MAX),
        "the used amount saturates in the report"
    );
    Ok(())
}

#[tokio::test]
async fn times_above_i64_max_are_refused() -> TestResult {
    let db = TestDb::new()?;
    let store = db.open().await?;
    let agent = add_agent(&store, "agent-1").await?;
    let mut new = new_session(&agent, "ps_1", 1)?;
    new.expires_at_ms = u64::MAX;

    let refused = store
        .create_session(new, agent_event(&agent, "tool.initialize_payment", T0))
        .await;

    assert!(
        matches!(
            refused,
            Err(StoreError::OutOfRange {
                field: "expires_at_ms",
                ..
            })
        ),
        "{refused:?}"
    );
    Ok(())
}
