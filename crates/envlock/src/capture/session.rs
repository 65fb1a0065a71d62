//! One async runtime and one engine connection for a whole run: the captures of both sides
//! of a diff and its golden cases share them. A stop (signal) during any engine work removes
//! every container envlock created before the run ends.

use std::cell::OnceCell;
use std::future::Future;
use std::sync::Arc;

use super::engine::Engine;
use super::layers;
use crate::error::{Error, Result};
use crate::settings::Settings;
use crate::stop::Stop;

/// The default engine address, as bollard uses it when `DOCKER_HOST` is unset.
const DEFAULT_HOST: &str = "unix:///var/run/docker.sock";

/// A run's engine connection, made on first use.
pub(crate) struct Session {
    runtime: tokio::runtime::Runtime,
    engine: OnceCell<Engine>,
    host: String,
    /// `ENVLOCK_ENGINE_TIMEOUT`.
    timeout: std::time::Duration,
    stop: Arc<Stop>,
    /// Layers read this run: the two sides of a diff of two tags share their base layers,
    /// read once.
    pub(crate) layers: Arc<layers::Cache>,
}

impl Session {
    /// A session for `settings`; nothing connects until an image is needed.
    pub(crate) fn new(settings: &Settings) -> Session {
        Session::sharing(settings, Arc::default())
    }

    /// A session whose layers are shared with others' (`envlock audit`'s workers: the
    /// tags of one repository share their base layers, read once).
    pub(crate) fn sharing(settings: &Settings, layers: Arc<layers::Cache>) -> Session {
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
            timeout: settings.engine_timeout,
            stop: settings.stop.clone(),
            layers,
        }
    }

    /// Runs `work` against the engine (connecting first if needed). When the run is asked to
    /// stop (a signal), or `work` fails, every container envlock created is removed; a stop
    /// gives [`Error::Interrupted`]. A container the engine would not remove fails the run
    /// ([`Error::NotRemoved`]), whatever `work` gave.
    pub(crate) fn run<'a, T, F>(&'a self, work: impl FnOnce(&'a Engine) -> F) -> Result<T>
    where
        F: Future<Output = Result<T>> + 'a,
    {
        self.stop.check()?;
        let engine = self.engine()?;
        self.runtime.block_on(async {
            let result = tokio::select! {
                result = work(engine) => result,
                interrupted = self.stop.wait() => Err(interrupted),
            };
            if result.is_err() {
                engine.remove_all().await;
            }
            let left = engine.take_left();
            if left.is_empty() {
                return result;
            }
            Err(Error::NotRemoved {
                host: self.host.clone(),
                containers: left
                    .iter()
                    .map(|(id, role)| format!("container `{id}` (org.envlock.role={role})"))
                    .collect(),
                after: result.err().map(Box::new),
            })
        })
    }

    /// Runs `work`, which needs no engine (a registry, an archive), until it ends or the run
    /// is asked to stop.
    pub(crate) fn block<T>(&self, work: impl Future<Output = Result<T>>) -> Result<T> {
        self.stop.check()?;
        self.runtime.block_on(async {
            tokio::select! {
                result = work => result,
                interrupted = self.stop.wait() => Err(interrupted),
            }
        })
    }

    /// The run's stop request.
    pub(crate) fn stop(&self) -> Arc<Stop> {
        self.stop.clone()
    }

    fn engine(&self) -> Result<&Engine> {
        if let Some(engine) = self.engine.get() {
            return Ok(engine);
        }
        // Connecting can wait on an engine that does not answer: a stop ends that too.
        let engine = self.runtime.block_on(async {
            tokio::select! {
                engine = Engine::connect(&self.host, self.timeout) => engine,
                interrupted = self.stop.wait() => Err(interrupted),
            }
        })?;
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
