//! What the store logs: denials at info with the rule, allows only at debug, and never the
//! agent's free text, metadata or transaction bytes.

use std::io::Write;
use std::sync::{Arc, Mutex};

use clawfirst_store::SessionPatch;
use tracing_subscriber::fmt::MakeWriter;

use crate::support::*;

/// Collects formatted log lines in memory.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Captured {
    fn text(&self) -> String {
        let bytes = self.0.lock().map(|b| b.clone()).unwrap_or_default();
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Ok(mut bytes) = self.0.lock() {
            bytes.extend_from_slice(buf);
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Captured {
    type Writer = Captured;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

fn capture(level: tracing::Level) -> (Captured, tracing::subscriber::DefaultGuard) {
    let captured = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(level)
        .with_writer(captured.clone())
        .with_ansi(false)
        .finish();
    let guard = tracing::subscriber::set_default(subscriber);
    (captured, guard)
}

#[tokio::test]
async fn a_budget_denial_is_logged_at_info_with_its_rule() -> TestResult {
    let db = TestDb::new()?;
    let store = db.open().await?;
    let agent = add_agent(&store, "agent-1").await?;
    let allowed = create(&store, new_session(&agent, "ps_allowed", 8)?).await?;
    let denied = create(&store, new_session(&agent, "ps_denied", 8)?).await?;
    let (logs, _guard) = capture(tracing::Level::INFO);

    reserve(&store, &allowed, APPROVE, daily_cap(10), T0 + 1).await??;
    let refused = reserve(&store, &denied, APPROVE, daily_cap(10), T0 + 2).await?;

    assert!(refused.is_err());
    let text = logs.text();
    let denial = text
        .lines()
        .find(|l| l.contains("budget reservation denied"));
    let denial = denial.ok_or_else(|| format!("no denial logged in {text:?}"))?;
    assert!(denial.contains("INFO"), "{denial}");
    assert!(denial.contains("policy.rule=daily_cap"), "{denial}");
    assert!(denial.contains("session.id=ps_denied"), "{denial}");
    assert!(
        !text.contains("ps_allowed"),
        "allows stay below info: {text}"
    );
    Ok(())
}

#[tokio::test]
async fn free_text_metadata_and_transaction_bytes_never_reach_the_logs() -> TestResult {
    let db = TestDb::new()?;
    let store = db.open().await?;
    let agent = add_agent(&store, "agent-1").await?;
    let mut new = new_session(&agent, "ps_1", 5)?;
    new.purpose = Some("purpose-marker".into());
    new.recipient_input = "recipient-marker@example.com".into();
    new.metadata = Some(serde_json::json!({ "note": "metadata-marker" }));
    let (logs, _guard) = capture(tracing::Level::TRACE);

    let id = create(&store, new).await?;
    let signed = SessionPatch {
        message: Some(b"message-marker".to_vec()),
        signed_transaction: Some(b"transaction-marker".to_vec()),
        ..SessionPatch::none()
    };
    advance(&store, &id, APPROVE.0, APPROVE.1, T0 + 1).await?;
    let event = operator_event("signer.signed", T0 + 2);
    let moved = store
        .transition(
            &id,
            APPROVE.1,
            clawfirst_store::SessionState::Signed,
            signed,
            event,
        )
        .await?;
    tracing::debug!(session = ?moved, "the caller logs the session it got back");

    let text = logs.text();
    assert!(text.contains("ps_1"), "the store did log: {text}");
    let text_markers = ["purpose-marker", "recipient-marker", "metadata-marker"];
    for marker in text_markers {
        assert!(!text.contains(marker), "{marker} leaked into {text}");
    }
    for bytes in [&b"message-marker"[..], &b"transaction-marker"[..]] {
        let as_debug = format!("{bytes:?}");
        let inner = as_debug.trim_matches(|c| c == '[' || c == ']');
        assert!(
            !text.contains(inner),
            "{} leaked into {text}",
            String::from_utf8_lossy(bytes)
        );
        assert!(!text.contains(&*String::from_utf8_lossy(bytes)), "{text}");
    }
    Ok(())
}
