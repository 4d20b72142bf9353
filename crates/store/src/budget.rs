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
//!
//! Each window counts in one [`Measure`]: base units of the session's asset (the agent's
//! reservations in that asset), micro-US-dollars (the agent's reservations in every asset, each
//! at the USD value it was reserved with), or a number of payments (every asset). One
//! reservation can be checked against windows of all three measures at once, in the same
//! transaction.

use serde::{Deserialize, Serialize};

use crate::error::{StoreError, named_enum};

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

/// What a rolling cap counts.
///
/// The measure also decides which reservations share the cap: base units count only the
/// session's own asset, the other measures count every asset of the agent.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Measure {
    /// Base units of the session's asset, summed over the agent's reservations in that asset.
    #[default]
    BaseUnits,
    /// Micro-US-dollars, summed over the agent's reservations in every asset, each at the USD
    /// value it was reserved with ([`Reservation::usd_micros`]).
    UsdMicros,
    /// Payments: the number of the agent's reservations, in every asset.
    Count,
}

named_enum!(Measure, "budget measure", [
    Measure::BaseUnits => "base_units",
    Measure::UsdMicros => "usd_micros",
    Measure::Count => "count",
]);

/// One rolling cap on what an agent may spend.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BudgetWindow {
    /// The policy rule that sets the cap (`daily_cap`, `hourly_cap`, ...), reported back when
    /// the cap would be exceeded.
    pub name: String,
    /// The length of the rolling window.
    pub window_ms: u64,
    /// The most the agent may have reserved or spent within the window, in `measure`.
    pub cap: u64,
    /// What the cap counts; base units when absent from serialized data.
    #[serde(default)]
    pub measure: Measure,
}

impl BudgetWindow {
    /// A cap of `cap` base units of the session's asset over the last `window_ms`
    /// milliseconds.
    pub fn new(name: impl Into<String>, window_ms: u64, cap: u64) -> Self {
        Self::measured(name, window_ms, cap, Measure::BaseUnits)
    }

    /// A cap of `cap` in `measure` over the last `window_ms` milliseconds.
    pub fn measured(name: impl Into<String>, window_ms: u64, cap: u64, measure: Measure) -> Self {
        Self {
            name: name.into(),
            window_ms,
            cap,
            measure,
        }
    }
}

/// The caps a session's reservation must fit in, and the USD value it is reserved with.
///
/// The reserved amount is the session's amount, read inside the same transaction; the
/// reservation's time is the time of the audit event that records it. The USD value is the
/// caller's: the store keeps it with the reservation, so that later [`Measure::UsdMicros`]
/// caps count this payment at the price it was approved at.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reservation {
    /// Every rolling cap to check; all must hold.
    pub windows: Vec<BudgetWindow>,
    /// The session's value in micro-US-dollars. Required when any window counts
    /// [`Measure::UsdMicros`]; when absent the reservation is stored as worth 0 USD, so pass
    /// it whenever a price is known.
    #[serde(default)]
    pub usd_micros: Option<u64>,
}

impl Reservation {
    /// A reservation checked against `windows`.
    pub fn new(windows: Vec<BudgetWindow>) -> Self {
        Self {
            windows,
            usd_micros: None,
        }
    }

    /// Adds one more rolling cap in base units.
    #[must_use]
    pub fn window(self, name: impl Into<String>, window_ms: u64, cap: u64) -> Self {
        self.measured_window(name, window_ms, cap, Measure::BaseUnits)
    }

    /// Adds one more rolling cap in `measure`.
    #[must_use]
    pub fn measured_window(
        mut self,
        name: impl Into<String>,
        window_ms: u64,
        cap: u64,
        measure: Measure,
    ) -> Self {
        self.windows
            .push(BudgetWindow::measured(name, window_ms, cap, measure));
        self
    }

    /// Sets the session's value in micro-US-dollars.
    #[must_use]
    pub fn usd_micros(mut self, usd_micros: u64) -> Self {
        self.usd_micros = Some(usd_micros);
        self
    }

    /// The USD value to store, refusing a reservation whose caps need one it does not have.
    pub(crate) fn checked_usd_micros(&self) -> Result<u64, StoreError> {
        let needs_usd = self.windows.iter().any(|w| w.measure == Measure::UsdMicros);
        match (self.usd_micros, needs_usd) {
            (Some(usd), _) => Ok(usd),
            (None, false) => Ok(0),
            (None, true) => Err(StoreError::MissingUsdValue),
        }
    }
}

/// A reservation refused because it would take a window past its cap. Nothing was written.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("budget {name} of {cap} would be exceeded: {used} used, {requested} requested")]
pub struct CapExceeded {
    /// The window's name (the policy rule).
    pub name: String,
    /// The window's cap, in `measure`.
    pub cap: u64,
    /// What was already reserved or spent within the window (saturated at `u64::MAX`), in
    /// `measure`.
    pub used: u64,
    /// What the session would add, in `measure` (1 for [`Measure::Count`]).
    pub requested: u64,
    /// What the window counts.
    #[serde(default)]
    pub measure: Measure,
}

/// What one session adds to a window, in each measure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Claim {
    /// The session's amount in base units of its asset.
    pub(crate) base_units: u64,
    /// The session's USD value.
    pub(crate) usd_micros: u64,
}

impl Claim {
    /// The claim in `measure`.
    pub(crate) fn in_measure(self, measure: Measure) -> u64 {
        match measure {
            Measure::BaseUnits => self.base_units,
            Measure::UsdMicros => self.usd_micros,
            Measure::Count => 1,
        }
    }
}

/// Checks `claim` against every window, given for each window (in the same order) the total
/// that already counts in it (reserved or committed, in the window's measure).
///
/// The first window (in the caller's order) that would be exceeded is reported.
pub(crate) fn check_totals(
    windows: &[BudgetWindow],
    used: &[u128],
    claim: Claim,
) -> Result<(), CapExceeded> {
    for (window, used) in windows.iter().zip(used) {
        let requested = claim.in_measure(window.measure);
        if used + u128::from(requested) > u128::from(window.cap) {
            return Err(CapExceeded {
                name: window.name.clone(),
                cap: window.cap,
                used: u64::try_from(*used).unwrap_or(u64::MAX),
                requested,
                measure: window.measure,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn units(base_units: u64) -> Claim {
        Claim {
            base_units,
            usd_micros: 0,
        }
    }

    #[test]
    fn the_cap_itself_is_reachable_but_not_passable() {
        let windows = [BudgetWindow::new("daily_cap", 1_000, 10)];
        assert_eq!(check_totals(&windows, &[7], units(3)), Ok(()));
        let refused = check_totals(&windows, &[7], units(4));
        assert_eq!(
            refused,
            Err(CapExceeded {
                name: "daily_cap".into(),
                cap: 10,
                used: 7,
                requested: 4,
                measure: Measure::BaseUnits,
            })
        );
    }

    #[test]
    fn the_first_exceeded_window_is_reported() {
        let windows = [
            BudgetWindow::new("hourly_cap", 100, 100),
            BudgetWindow::new("daily_cap", 1_000, 50),
        ];
        let refused = check_totals(&windows, &[45, 45], units(10));
        assert_eq!(refused.map_err(|e| e.name), Err("daily_cap".to_owned()));
    }

    #[test]
    fn each_window_is_checked_in_its_own_measure() {
        let windows = [
            BudgetWindow::new("daily_cap", 1_000, 1_000),
            BudgetWindow::measured("daily_usd", 1_000, 5_000_000, Measure::UsdMicros),
            BudgetWindow::measured("daily_count", 1_000, 3, Measure::Count),
        ];
        let claim = Claim {
            base_units: 900,
            usd_micros: 2_000_000,
        };
        assert_eq!(check_totals(&windows, &[100, 3_000_000, 2], claim), Ok(()));

        let refused = check_totals(&windows, &[100, 3_000_001, 2], claim);
        assert_eq!(
            refused.map_err(|e| (e.name, e.requested, e.measure)),
            Err(("daily_usd".to_owned(), 2_000_000, Measure::UsdMicros))
        );
        let refused = check_totals(&windows, &[100, 0, 3], claim);
        assert_eq!(
            refused.map_err(|e| (e.name, e.used, e.requested, e.measure)),
            Err(("daily_count".to_owned(), 3, 1, Measure::Count))
        );
    }

    #[test]
    fn a_usd_window_needs_a_usd_value() {
        let base_only = Reservation::default().window("daily_cap", 1_000, 10);
        assert_eq!(base_only.checked_usd_micros().ok(), Some(0));
        let usd = base_only.measured_window("daily_usd", 1_000, 10, Measure::UsdMicros);
        assert!(matches!(
            usd.checked_usd_micros(),
            Err(StoreError::MissingUsdValue)
        ));
        assert_eq!(usd.usd_micros(7).checked_usd_micros().ok(), Some(7));
    }

    #[test]
    fn old_serialized_windows_count_base_units() -> Result<(), serde_json::Error> {
        let window: BudgetWindow =
            serde_json::from_str(r#"{"name":"daily_cap","window_ms":1,"cap":2}"#)?;
        assert_eq!(window, BudgetWindow::new("daily_cap", 1, 2));
        let reservation: Reservation = serde_json::from_str(r#"{"windows":[]}"#)?;
        assert_eq!(reservation, Reservation::default());
        Ok(())
    }

    #[test]
    fn huge_totals_never_wrap() {
        let windows = [
            BudgetWindow::new("daily_cap", u64::MAX, u64::MAX),
            BudgetWindow::measured("daily_count", u64::MAX, u64::MAX, Measure::Count),
        ];
        let max = u128::from(u64::MAX);
        let refused = check_totals(&windows, &[2 * max, 0], units(1));
        assert_eq!(refused.map_err(|e| e.used), Err(u64::MAX));
        assert_eq!(
            check_totals(&windows, &[max - 1, max - 1], units(1)),
            Ok(())
        );
        let refused = check_totals(&windows, &[0, max], units(0));
        assert_eq!(refused.map_err(|e| e.name), Err("daily_count".to_owned()));
    }
}
