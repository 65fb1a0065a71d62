//! One async runtime and one engine connection for a whole run: the captures of both sides
//! of a diff and its golden cases share them. Ctrl-C during any engine work removes every
//! container envlock created before the run stops.

use std::cell::OnceCell;
use std::future::Future;

use super::engine::Engine;
use crate::error::{Error, Result};
use crate::settings::Settings;

/// The default engine address, as bollard uses it when `DOCKER_HOST` is unset.
const DEFAULT_HOST: &str = "unix:///var/run/docker.sock";

/// A run's engine connection, made on first use.
pub(crate) struct Session {
    runtime: tokio::runtime::Runtime,
    engine: OnceCell<Engine>,
    host: String,
}

impl Session {
    /// A session for `settings`; nothing connects until an image is needed.
    pub(crate) fn new(settings: &Settings) -> Session {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a current-thread runtime always builds");
        let host = settings
            .environment
            .text("DOCKER_HOST")
            .filter(|host| !host.is_empty())
            .unwrap_or_else(|| DEFAULT_HOST.to_string());
        Session {
            runtime,
            engine: OnceCell::new(),
            host,
        }
    }

    /// Runs `work` against the engine (connecting first if needed). On Ctrl-C every
    /// container envlock created is removed and the result is [`Error::Interrupted`].
    pub(crate) fn run<'a, T, F>(&'a self, work: impl FnOnce(&'a Engine) -> F) -> Result<T>
    where
        F: Future<Output = Result<T>> + 'a,
    {
        let engine = self.engine()?;
        self.runtime.block_on(async {
            let result = tokio::select! {
                result = work(engine) => result,
                _ = tokio::signal::ctrl_c() => Err(Error::Interrupted),
            };
            if result.is_err() {
                engine.remove_all().await;
            }
            result
        })
    }

    fn engine(&self) -> Result<&Engine> {
        if let Some(engine) = self.engine.get() {
            return Ok(engine);
        }
        let engine = self.runtime.block_on(Engine::connect(&self.host))?;
        Ok(self.engine.get_or_init(|| engine))
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        if let Some(engine) = self.engine.get() {
            self.runtime.block_on(engine.remove_all());
        }
    }
}
