//! Background work on an interval: the settlement watcher and the policy file watcher.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;
use tokio::task::JoinHandle;

/// A task that runs one pass every `interval` until stopped. A pass in progress when the stop
/// comes is finished, never cut short, so no pass is left half done.
#[derive(Debug)]
pub struct Periodic {
    stop: Arc<Notify>,
    task: JoinHandle<()>,
}

impl Periodic {
    /// Starts running `pass`, first after one `interval`.
    pub fn start<F, Fut>(interval: Duration, mut pass: F) -> Self
    where
        F: FnMut() -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send,
    {
        let stop = Arc::new(Notify::new());
        let stopped = stop.clone();
        let task = tokio::spawn(async move {
            loop {
                tokio::select! {
                    () = stopped.notified() => break,
                    () = tokio::time::sleep(interval) => {}
                }
                pass().await;
            }
        });
        Self { stop, task }
    }

    /// Stops the task and waits for its current pass.
    pub async fn stop(self) {
        self.stop.notify_one();
        let _ = self.task.await;
    }
}
