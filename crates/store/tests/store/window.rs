//! Rolling windows: a reservation counts from its creation until the window has passed.

use clawfirst_core::Asset;
use clawfirst_store::Reservation;

use crate::support::*;

fn hourly(cap: u64) -> Reservation {
    Reservation::default().window("hourly_cap", HOUR, cap)
}

#[tokio::test]
async fn reservations_older_than_the_window_do_not_count() -> TestResult {
    let db = TestDb::new()?;
    let store = db.open().await?;
    let agent = add_agent(&store, "agent-1").await?;
    let old = create(&store, new_session(&agent, "ps_old", 10)?).await?;
    let early = create(&store, new_session(&agent, "ps_early", 1)?).await?;
    let late = create(&store, new_session(&agent, "ps_late", 10)?).await?;
    reserve(&store, &old, APPROVE, hourly(10), T0).await??;

    // Exactly one window later the old reservation still counts ...
    let at_edge = reserve(&store, &early, APPROVE, hourly(10), T0 + HOUR).await?;
    assert_eq!(at_edge.map_err(|e| e.used), Err(10));

    // ... and one millisecond later it no longer does.
    let after = reserve(&store, &late, APPROVE, hourly(10), T0 + HOUR + 1).await?;
    assert!(after.is_ok(), "{after:?}");

    assert_eq!(store.budget_usage(&agent, Asset::Sol, T0).await?, 20);
    assert_eq!(store.budget_usage(&agent, Asset::Sol, T0 + 1).await?, 10);
    Ok(())
}

#[tokio::test]
async fn a_longer_window_still_counts_what_a_shorter_one_forgot() -> TestResult {
    let db = TestDb::new()?;
    let store = db.open().await?;
    let agent = add_agent(&store, "agent-1").await?;
    let first = create(&store, new_session(&agent, "ps_first", 6)?).await?;
    let second = create(&store, new_session(&agent, "ps_second", 6)?).await?;
    let caps = || hourly(10).window("daily_cap", 24 * HOUR, 10);
    reserve(&store, &first, APPROVE, caps(), T0).await??;

    let refused = reserve(&store, &second, APPROVE, caps(), T0 + 2 * HOUR).await?;

    assert_eq!(
        refused.map_err(|e| (e.name, e.used)),
        Err(("daily_cap".to_owned(), 6))
    );
    Ok(())
}
