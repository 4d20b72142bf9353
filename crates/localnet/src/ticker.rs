//! The background thread that advances slots.
//!
//! The thread waits on a channel with a timeout of one slot. Dropping the [`Ticker`] drops the
//! channel's sender, which wakes the thread at once; the drop then joins it, so no thread
//! outlives the [`crate::Localnet`] that started it.

use std::sync::Arc;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::errors::LocalnetError;
use crate::shared::Shared;

#[derive(Debug)]
pub(crate) struct Ticker {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Ticker {
    pub(crate) fn start(shared: Arc<Shared>, interval: Duration) -> Result<Self, LocalnetError> {
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("localnet-slots".to_owned())
            .spawn(move || run(&shared, interval, &stopped))
            .map_err(LocalnetError::Ticker)?;
        Ok(Self {
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

fn run(shared: &Shared, interval: Duration, stopped: &mpsc::Receiver<()>) {
    let mut next = Instant::now() + interval;
    loop {
        let wait = next.saturating_duration_since(Instant::now());
        match stopped.recv_timeout(wait) {
            Err(RecvTimeoutError::Timeout) => {}
            // A message or a dropped sender both mean stop.
            Ok(()) | Err(RecvTimeoutError::Disconnected) => return,
        }
        if let Err(e) = shared.tick() {
            tracing::error!(error = %e, "localnet slot ticker stopped");
            return;
        }
        next += interval;
        // After a long stall (a suspended laptop), resume the cadence instead of replaying
        // every missed slot in a burst.
        let now = Instant::now();
        if next + interval < now {
            next = now + interval;
        }
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
        {
            tracing::error!("localnet slot ticker panicked");
        }
    }
}
