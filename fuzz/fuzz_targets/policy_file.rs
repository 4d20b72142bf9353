//! Loading arbitrary text as a policy file must never panic: it loads, or it is refused with an
//! error naming the place. A policy that loads must evaluate any payment without panicking.

#![no_main]

use clawfirst_core::{Address, AgentId, Amount};
use clawfirst_policy::{AgentState, PaymentFacts, Policy};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(loaded) = Policy::from_toml_str(text, "fuzz.toml") else {
        return;
    };
    let (Ok(agent), Ok(amount)) = (AgentId::new("fuzz-agent"), Amount::parse("1.5 USDC")) else {
        return;
    };
    let recipient = Address::new([7; 32]);
    let facts = PaymentFacts {
        agent_id: &agent,
        agent_state: AgentState::Active,
        network: "localnet",
        amount,
        recipient: &recipient,
        recipient_label: None,
        purpose: None,
        first_payment_to_recipient: true,
        defer_until_approval: false,
        at_ms: 1_700_000_000_000,
        usage: None,
    };
    let explained = loaded.policy.explain(&facts);
    assert_eq!(*explained.decision(), loaded.policy.evaluate(&facts));
});
