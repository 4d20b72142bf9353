//! Budget reservations: the amounts that count against an agent's rolling caps.
//!
//! A session reserves its amount when it is authorized
//! ([`crate::Store::reserve_and_transition`]). The reservation counts against every cap from
//! then on, while the payment is still unsettled, so parallel requests can never exceed a cap
//! together. Entering `finalized` commits it (it keeps counting); entering `rejected`,
//! `cancelled`, `expired` or `failed` releases it (it stops counting).
//!
//! A reservation counts in a window of `window_ms` at time `now` when it was created at or
//! after `now - window_ms`. Sums are computed in `u128`, so no number of reservations can wrap.

use serde::{Deserialize, Serialize};

use crate::error::named_enum;

/// Where a reservation stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReservationState {
    /// Held for an unsettled payment; counts against the caps.
    Reserved,
    /// The payment settled; counts against the caps.
    Committed,
    /// The payment will never happen; no longer counts.
    Released,
}

named_enum!(ReservationState, "reservation state", [
    ReservationState::Reserved => "reserved",
    ReservationState::Committed => "committed",
    ReservationState::Released => "released",
]);

/// One rolling cap on the total an agent may spend in one asset.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BudgetWindow {
    /// The policy rule that sets the cap (`daily_cap`, `hourly_cap`, ...), reported back when
    /// the cap would be exceeded.
    pub name: String,
    /// The length of the rolling window.
    pub window_ms: u64,
    /// The most the agent may have reserved or spent within the window, in base units.
    pub cap: u64,
}

impl BudgetWindow {
    /// A cap of `cap` base units over the last `window_ms` milliseconds.
    pub fn new(name: impl Into<String>, window_ms: u64, cap: u64) -> Self {
        Self {
            name: name.into(),
            window_ms,
            cap,
        }
    }
}

/// The caps a session's reservation must fit in, for its own agent and asset.
///
/// The reserved amount is the session's amount, read inside the same transaction; the
/// reservation's time is the time of the audit event that records it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reservation {
    /// Every rolling cap to check; all must hold.
    pub windows: Vec<BudgetWindow>,
}

impl Reservation {
    /// A reservation checked against `windows`.
    pub fn new(windows: Vec<BudgetWindow>) -> Self {
        Self { windows }
    }

    /// Adds one more rolling cap.
    #[must_use]
    pub fn window(mut self, name: impl Into<String>, window_ms: u64, cap: u64) -> Self {
        self.windows.push(BudgetWindow::new(name, window_ms, cap));
        self
    }
}

/// A reservation refused because it would take a window past its cap. Nothing was written.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("budget {name} of {cap} would be exceeded: {used} used, {requested} requested")]
pub struct CapExceeded {
    /// The window's name (the policy rule).
    pub name: String,
    /// The window's cap.
    pub cap: u64,
    /// What was already reserved or spent within the window (saturated at `u64::MAX`).
    pub used: u64,
    /// The amount asked for.
    pub requested: u64,
}

/// Checks `requested` against every window, given for each window (in the same order) the
/// total that already counts in it (reserved or committed, for this agent and asset).
///
/// The first window (in the caller's order) that would be exceeded is reported.
pub(crate) fn check_totals(
    windows: &[BudgetWindow],
    used: &[u128],
    requested: u64,
) -> Result<(), CapExceeded> {
    for (window, used) in windows.iter().zip(used) {
        if used + u128::from(requested) > u128::from(window.cap) {
            return Err(CapExceeded {
                name: window.name.clone(),
                cap: window.cap,
                used: u64::try_from(*used).unwrap_or(u64::MAX),
                requested,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_itself_is_reachable_but_not_passable() {
        let windows = [BudgetWindow::new("daily_cap", 1_000, 10)];
        assert_eq!(check_totals(&windows, &[7], 3), Ok(()));
        let refused = check_totals(&windows, &[7], 4);
        assert_eq!(
            refused,
            Err(CapExceeded {
                name: "daily_cap".into(),
                cap: 10,
                used: 7,
                requested: 4
            })
        );
    }

    #[test]
    fn the_first_exceeded_window_is_reported() {
        let windows = [
            BudgetWindow::new("hourly_cap", 100, 100),
            BudgetWindow::new("daily_cap", 1_000, 50),
        ];
        let refused = check_totals(&windows, &[45, 45], 10);
        assert_eq!(refused.map_err(|e| e.name), Err("daily_cap".to_owned()));
    }

    #[test]
    fn huge_totals_never_wrap() {
        let windows = [BudgetWindow::new("daily_cap", u64::MAX, u64::MAX)];
        let refused = check_totals(&windows, &[2 * u128::from(u64::MAX)], 1);
        assert_eq!(refused.map_err(|e| e.used), Err(u64::MAX));
        assert_eq!(
            check_totals(&windows, &[u128::from(u64::MAX - 1)], 1),
            Ok(())
        );
    }
}
