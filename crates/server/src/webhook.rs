//! Approval notifications to an operator's webhook.
//!
//! Every pending approval and every decision on one is posted as a JSON object to the
//! configured URL, so approvers learn about a waiting payment without polling. Delivery is
//! asynchronous and never holds up a payment: events go through a bounded queue to one
//! background task that posts them in order and retries a failed delivery a few times with a
//! growing pause. An event that still cannot be delivered is logged and dropped; the
//! approval itself stays listed by `clawfirst approvals list` and the admin API, which remain
//! the source of truth.
//!
//! # Authenticity
//!
//! With a secret configured, each request carries `X-ClawFirst-Signature: t=<ms>,v1=<hex>`,
//! where `<hex>` is HMAC-SHA256 under the secret of `<ms>.<body>`. A receiver recomputes it
//! (comparing in constant time) and refuses old timestamps, so a forged or replayed
//! notification is recognised. The secret never appears in logs or errors.
//!
//! # What is sent
//!
//! Payment facts an approver needs (agent, amount, recipient, purpose, tier, quorum, expiry)
//! and never a credential, a grant or a signature.

use std::time::Duration;

use clawfirst_core::now_ms;
use clawfirst_core::secret::SecretBytes;
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tracing::{debug, info, warn};

/// How many events may wait for delivery before new ones are dropped.
const QUEUE_DEPTH: usize = 1024;
/// Delivery attempts per event.
const ATTEMPTS: u32 = 4;
/// The pause after the first failed attempt; it doubles after each further one.
const FIRST_RETRY_PAUSE: Duration = Duration::from_millis(500);
/// How long one delivery attempt may take.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(5);

/// Where notifications go.
pub struct WebhookTarget {
    /// The URL that receives a POST per event.
    pub url: reqwest::Url,
    /// The HMAC key for the signature header, if configured.
    pub secret: Option<SecretBytes>,
}

impl std::fmt::Debug for WebhookTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookTarget")
            .field("url", &self.url.as_str())
            .field("signed", &self.secret.is_some())
            .finish()
    }
}

/// The sending side: cheap to clone, never blocks.
#[derive(Clone, Debug)]
pub struct Notifier {
    queue: Option<mpsc::Sender<Value>>,
}

impl Notifier {
    /// A notifier that sends nothing, for deployments without a webhook.
    pub fn disabled() -> Self {
        Self { queue: None }
    }

    /// Starts the delivery task for `target`.
    pub fn start(target: WebhookTarget) -> (Self, JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(QUEUE_DEPTH);
        let task = tokio::spawn(deliver_all(target, rx));
        (Self { queue: Some(tx) }, task)
    }

    /// Whether events go anywhere.
    pub fn is_enabled(&self) -> bool {
        self.queue.is_some()
    }

    /// Queues one event. A full queue drops the event with a warning rather than slowing the
    /// payment path.
    pub fn notify(&self, event: Value) {
        let Some(queue) = &self.queue else {
            return;
        };
        if let Err(e) = queue.try_send(event) {
            warn!(reason = %e, "webhook event dropped");
        }
    }
}

async fn deliver_all(target: WebhookTarget, mut rx: mpsc::Receiver<Value>) {
    let client = match reqwest::Client::builder().timeout(ATTEMPT_TIMEOUT).build() {
        Ok(client) => client,
        Err(e) => {
            warn!(error = %e, "webhook client unavailable; notifications are off");
            return;
        }
    };
    while let Some(event) = rx.recv().await {
        deliver(&client, &target, &event).await;
    }
}

/// Posts one event, retrying with a growing pause.
async fn deliver(client: &reqwest::Client, target: &WebhookTarget, event: &Value) {
    let kind = event["event"].as_str().unwrap_or("unknown").to_owned();
    let body = event.to_string();
    let mut pause = FIRST_RETRY_PAUSE;
    for attempt in 1..=ATTEMPTS {
        let mut request = client
            .post(target.url.clone())
            .header("content-type", "application/json");
        if let Some(secret) = &target.secret {
            request = request.header("x-clawfirst-signature", signature(secret, now_ms(), &body));
        }
        match request.body(body.clone()).send().await {
            Ok(response) if response.status().is_success() => {
                debug!(webhook.event = %kind, attempt, "webhook delivered");
                return;
            }
            Ok(response) => {
                let status = response.status();
                info!(webhook.event = %kind, attempt, %status, "webhook refused");
            }
            Err(e) => info!(webhook.event = %kind, attempt, error = %e, "webhook unreachable"),
        }
        if attempt < ATTEMPTS {
            tokio::time::sleep(pause).await;
            pause *= 2;
        }
    }
    warn!(webhook.event = %kind, attempts = ATTEMPTS, "webhook event not delivered");
}

/// The signature header's value for `body` sent at `at_ms`.
pub fn signature(secret: &SecretBytes, at_ms: u64, body: &str) -> String {
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret.expose()) {
        Ok(mac) => mac,
        // HMAC accepts keys of any length; this branch cannot be taken.
        Err(_) => return String::new(),
    };
    mac.update(at_ms.to_string().as_bytes());
    mac.update(b".");
    mac.update(body.as_bytes());
    format!("t={at_ms},v1={}", hex::encode(mac.finalize().into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_follows_the_documented_construction() {
        // HMAC-SHA256("key", "1700000000000.{}") computed independently with Python's hmac.
        let secret = SecretBytes::new(b"key".to_vec());
        let header = signature(&secret, 1_700_000_000_000, "{}");
        assert_eq!(
            header,
            "t=1700000000000,v1=\
             36a72f4525d3323bd0f238fe82098164fb77b1e42288ff8e07b074c686178ad3"
        );
    }

    #[test]
    fn target_debug_hides_the_secret() -> Result<(), Box<dyn std::error::Error>> {
        let target = WebhookTarget {
            url: reqwest::Url::parse("http://127.0.0.1:1/hook")?,
            secret: Some(SecretBytes::new(b"super-secret-value".to_vec())),
        };
        let shown = format!("{target:?}");
        assert!(!shown.contains("super-secret-value"), "{shown}");
        assert!(shown.contains("signed: true"), "{shown}");
        Ok(())
    }
}
