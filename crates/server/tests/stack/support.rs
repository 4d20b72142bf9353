//! A stack on a temporary data directory, started and stopped like `clawfirst up` does.

use std::path::Path;
use std::time::Duration;

use clawfirst_core::{AgentId, Asset};
use clawfirst_server::datadir::DataDir;
use clawfirst_server::payments::Caller;
use clawfirst_server::runtime::Services;
use clawfirst_server::tools::input;
use clawfirst_server::up::{DEMO_AGENT, Stack, ensure_demo_agent};
use serde_json::{Value, json};

pub type TestResult = Result<(), Box<dyn std::error::Error>>;

pub const RECIPIENT: &str = "9xQeWvG816bUx9EPjHmaT23yvVM2ZWbrrpZb9PusVFin";

/// Starts the stack on `dir`, initializing it on first use, with the demo agent.
pub async fn start(dir: &Path) -> Result<Stack, Box<dyn std::error::Error>> {
    let data = DataDir::new(dir)?;
    let (stack, _) = Stack::start(&data, Some("127.0.0.1:0")).await?;
    ensure_demo_agent(&stack.services.store, &stack.config).await?;
    Ok(stack)
}

pub fn demo() -> Caller {
    Caller::agent(AgentId::new(DEMO_AGENT).unwrap_or_else(|_| unreachable!("valid id")))
}

pub fn args(value: Value) -> rmcp::model::JsonObject {
    match value {
        Value::Object(m) => m,
        _ => rmcp::model::JsonObject::new(),
    }
}

/// Creates a session for `amount` to [`RECIPIENT`] and returns its id.
pub async fn initialize(
    services: &Services,
    amount: &str,
) -> Result<String, Box<dyn std::error::Error>> {
    let request = input::initialize_payment(Some(&args(
        json!({ "amount": amount, "recipient": RECIPIENT }),
    )))?;
    let view = services
        .payments
        .initialize_payment(&demo(), request)
        .await?;
    Ok(view["session_id"].as_str().unwrap_or_default().to_owned())
}

/// The demo wallet's balance of `asset`, in base units.
pub async fn balance(services: &Services, asset: Asset) -> Result<u64, Box<dyn std::error::Error>> {
    let view = services
        .payments
        .query_balance(&demo(), Some(asset))
        .await?;
    let units = view["balances"][0]["base_units"]
        .as_str()
        .unwrap_or("0")
        .parse()?;
    Ok(units)
}

/// Waits until the session is finalized, or fails after 30 seconds.
pub async fn wait_finalized(
    services: &Services,
    session_id: &str,
) -> Result<Value, Box<dyn std::error::Error>> {
    let id = clawfirst_core::SessionId::new(session_id)?;
    for _ in 0..300 {
        let view = services
            .payments
            .verify_settlement(&demo(), &id, clawfirst_solana::Commitment::Finalized)
            .await?;
        if view["state"] == "finalized" {
            return Ok(view);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(format!("session {session_id} did not finalize").into())
}
