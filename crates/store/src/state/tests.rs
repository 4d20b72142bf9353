use std::str::FromStr;

use proptest::prelude::*;

use super::*;

#[test]
fn names_round_trip_and_match_serde() -> Result<(), Box<dyn std::error::Error>> {
    for state in SessionState::ALL {
        let name = state.to_string();
        assert_eq!(SessionState::from_str(&name)?, state);
        assert_eq!(serde_json::to_string(&state)?, format!("\"{name}\""));
    }
    Ok(())
}

#[test]
fn terminal_states_are_exactly_the_five_ends() {
    let terminal: Vec<_> = SessionState::ALL
        .into_iter()
        .filter(|s| s.is_terminal())
        .collect();
    assert_eq!(
        terminal,
        [
            SessionState::Finalized,
            SessionState::Rejected,
            SessionState::Cancelled,
            SessionState::Expired,
            SessionState::Failed,
        ]
    );
}

#[test]
fn no_state_moves_to_itself_or_back_to_the_start() {
    for state in SessionState::ALL {
        assert!(!state.can_move_to(state), "{state} -> {state}");
        assert!(
            !state.can_move_to(SessionState::Initialized),
            "{state} -> initialized"
        );
    }
}

#[test]
fn a_signed_payment_can_no_longer_be_cancelled_or_expired() {
    for state in [
        SessionState::Signed,
        SessionState::Submitted,
        SessionState::Confirmed,
    ] {
        assert!(!state.can_move_to(SessionState::Cancelled), "{state}");
        assert!(!state.can_move_to(SessionState::Expired), "{state}");
        assert!(!state.expires_automatically(), "{state}");
    }
    assert!(!SessionState::Confirmed.can_move_to(SessionState::Failed));
}

#[test]
fn every_terminal_state_but_finalized_releases_the_reservation() {
    for state in SessionState::ALL {
        let expected = match state {
            SessionState::Finalized => ReservationEffect::Commit,
            s if s.is_terminal() => ReservationEffect::Release,
            _ => ReservationEffect::Keep,
        };
        assert_eq!(state.reservation_effect(), expected, "{state}");
    }
}

#[test]
fn parse_refuses_near_misses_and_shortens_long_input() {
    for text in [
        "Initialized",
        " approved",
        "approved ",
        "awaiting-approval",
        "",
    ] {
        assert!(SessionState::from_str(text).is_err(), "{text:?}");
    }
    let long = "x".repeat(1000);
    let err = SessionState::from_str(&long).err();
    assert_eq!(err.map(|e| e.text.chars().count()), Some(33));
}

proptest! {
    #[test]
    fn parse_accepts_only_the_exact_names(text in "\\PC{0,40}") {
        let parsed = SessionState::from_str(&text);
        let known = SessionState::ALL.iter().any(|s| s.as_str() == text);
        prop_assert_eq!(parsed.is_ok(), known);
        if let Ok(state) = parsed {
            prop_assert_eq!(state.as_str(), text.as_str());
        }
    }
}
