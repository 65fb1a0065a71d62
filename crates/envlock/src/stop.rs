//! Stopping a run on a signal. The CLI turns SIGINT, SIGTERM, SIGHUP and SIGQUIT into a
//! request here; the library waits on it beside engine work and checks it between steps of
//! local work (a child process, a hashed block), then cleans up — every container removed,
//! every child process group stopped — and returns [`Error::Interrupted`]. Later signals
//! change nothing: cleanup that has started runs to its end.

use std::sync::atomic::{AtomicI32, Ordering};

use tokio::sync::Notify;

use crate::error::{Error, Result};

/// A run's stop request: the first signal received, if any.
#[derive(Debug, Default)]
pub struct Stop {
    signal: AtomicI32,
    notify: Notify,
}

impl Stop {
    /// A run nobody has asked to stop.
    pub fn new() -> Stop {
        Stop::default()
    }

    /// Asks the run to stop because of `signal`; only the first request counts.
    pub fn request(&self, signal: i32) {
        let first = self
            .signal
            .compare_exchange(0, signal, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok();
        if first {
            self.notify.notify_waiters();
        }
    }

    /// The signal that asked the run to stop.
    pub fn requested(&self) -> Option<i32> {
        Some(self.signal.load(Ordering::SeqCst)).filter(|signal| *signal != 0)
    }

    /// [`Error::Interrupted`] once a stop was requested.
    pub fn check(&self) -> Result<()> {
        match self.requested() {
            Some(signal) => Err(Error::Interrupted { signal }),
            None => Ok(()),
        }
    }

    /// Waits until a stop is requested, then gives [`Error::Interrupted`].
    pub(crate) async fn wait(&self) -> Error {
        loop {
            let notified = self.notify.notified();
            tokio::pin!(notified);
            // Registered before the check, so a request between the two is not missed.
            notified.as_mut().enable();
            if let Some(signal) = self.requested() {
                return Error::Interrupted { signal };
            }
            notified.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_signal_wins_and_wakes_waiters() {
        let stop = std::sync::Arc::new(Stop::new());
        assert!(stop.check().is_ok());
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let waiter = stop.clone();
        let requester = std::thread::spawn({
            let stop = stop.clone();
            move || {
                std::thread::sleep(std::time::Duration::from_millis(50));
                stop.request(libc::SIGTERM);
                stop.request(libc::SIGINT);
            }
        });
        let error = runtime.block_on(async move { waiter.wait().await });
        requester.join().unwrap();
        assert!(matches!(
            error,
            Error::Interrupted {
                signal: libc::SIGTERM
            }
        ));
        assert_eq!(stop.requested(), Some(libc::SIGTERM));
    }
}
