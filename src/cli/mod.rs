//! The command line: parses flags, resolves [`envlock::Settings`] once, calls the library,
//! prints, and picks the exit code. Everything below this module returns values; only this
//! layer writes to the terminal or reads the process environment.

mod audit;
mod diff;
mod export;
mod settings;
mod snapshot;
mod terminal;

use std::process::ExitCode;
use std::sync::Arc;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};

use envlock::Stop;

/// Lock a Python ML runtime and catch drift between a dev environment and its Docker image.
///
/// Exit codes: 0 ran and found nothing at or above the gate, 1 found drift, 2 could not run.
#[derive(Debug, Parser)]
#[command(name = "envlock", version, about, long_about = None)]
struct Cli {
    /// When to colour output: `auto` (on a terminal, unless `NO_COLOR` is set), `always`,
    /// `never`.
    #[arg(long, value_enum, default_value = "auto", global = true)]
    color: Color,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Color {
    Auto,
    Always,
    Never,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Capture a Python runtime (interpreter, packages, platform, environment, models) into a lock.
    Snapshot(snapshot::Args),
    /// Compare two runtimes (locks, interpreters, images) and gate on the drift.
    Diff(diff::Args),
    /// Capture many runtimes and print a matrix of what differs across them.
    Audit(audit::Args),
    /// Write a lock's packages as a requirements.txt of exact pins or a PEP 751 pylock.toml.
    Export(export::Args),
    /// Print a shell completion script: `envlock completions bash > ~/.local/share/bash-completion/completions/envlock`.
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff): `envlock man > envlock.1 && man ./envlock.1`.
    Man,
}

/// How images are read where they live, for `snapshot --image` and `diff` operands.
#[derive(Debug, Clone, clap::Args)]
struct ImageArgs {
    /// Pick OS/ARCH[/VARIANT] (e.g. `linux/arm64`) from a multi-platform image index, and
    /// refuse an image of another platform; default: this machine's platform.
    #[arg(long, value_name = "OS/ARCH")]
    platform: Option<String>,
    /// `docker:` images: also attribute each package, system package and model to the layer
    /// that last wrote it (`layer = N`). The image is streamed out of the engine's image
    /// export (as `docker save`) and read as it arrives: it costs what a `docker save` costs
    /// the engine (seconds for a large image: 12 s for 900 MB measured). Registries and
    /// archives are always attributed.
    #[arg(long)]
    layers: bool,
    /// Allow plain HTTP to registries off this machine (loopback ones always may).
    #[arg(long)]
    insecure_registry: bool,
    /// Run golden cases in images (and their latency timing) as UID[:GID] instead of the
    /// image's USER, as the platform will: `openshift` is a random UID from 1000000000 up,
    /// GID 0, no /etc/passwd entry, as OpenShift starts containers. A model that writes
    /// under a root-owned WORKDIR then fails here, not in production. As `[image] run-as`;
    /// the lock and the report record it.
    #[arg(long, value_name = "UID[:GID]|openshift")]
    run_as: Option<envlock::RunAs>,
}

impl ImageArgs {
    /// Sets these flags on `settings`; a malformed `--platform` is a usage error.
    fn apply(&self, settings: &mut envlock::Settings) -> anyhow::Result<()> {
        settings.platform = match &self.platform {
            Some(text) => Some(
                text.parse()
                    .map_err(|problem| anyhow::anyhow!("`--platform`: {problem}"))?,
            ),
            None => None,
        };
        settings.layers = self.layers;
        settings.insecure_registry = self.insecure_registry;
        settings.run_as = self.run_as.clone().or(settings.config.image.run_as.clone());
        Ok(())
    }
}

/// The command line, each command that reaches an engine or a registry saying how long it
/// waits and what it asks again.
fn command() -> clap::Command {
    let mut command = Cli::command();
    for name in ["snapshot", "diff", "audit"] {
        command = command.mut_subcommand(name, |sub| {
            let help = sub
                .get_after_help()
                .map(ToString::to_string)
                .unwrap_or_default();
            sub.after_help(format!("{help}\n\n{}", limits()))
        });
    }
    command
}

/// The timeouts and retries, from the values the code uses.
fn limits() -> String {
    use envlock::{
        seconds, DEFAULT_ENGINE_TIMEOUT, DEFAULT_PROBE_TIMEOUT, DEFAULT_REGISTRY_TIMEOUT,
    };
    let retries = envlock::retry_pauses();
    let pauses: Vec<String> = retries.registry.iter().map(|&p| seconds(p)).collect();
    let archive_pauses: Vec<String> = retries.archive.iter().map(|&p| seconds(p)).collect();
    format!(
        "Limits: each Docker engine call may take ENVLOCK_ENGINE_TIMEOUT ({}) to answer, and a \
stream from it stay silent as long; a read of the engine's archive endpoint that answers \
404 for a path a stat finds, or whose connection is cut, is asked again, {} tries in all, \
after pauses of {}. Each registry request may take ENVLOCK_REGISTRY_TIMEOUT ({}) to \
connect and between reads. A registry's 429, 502, 503, 504 or a reset connection is asked \
again, {} tries in all, after pauses of {} (a blob cut off resumes where it broke); a \
timeout or any other error is not. A container's run is bounded by ENVLOCK_PROBE_TIMEOUT \
({}) or its golden case's timeout. Whatever fails, envlock exits 2 naming it (128+N on a \
signal), writes no lock or report, and removes its containers (naming any the engine \
would not remove).",
        seconds(DEFAULT_ENGINE_TIMEOUT),
        archive_pauses.len() + 1,
        archive_pauses.join(", "),
        seconds(DEFAULT_REGISTRY_TIMEOUT),
        pauses.len() + 1,
        pauses.join(", "),
        seconds(DEFAULT_PROBE_TIMEOUT),
    )
}

/// Runs envlock with the process's arguments and returns its exit code.
pub(crate) fn run() -> ExitCode {
    let cli = match command()
        .try_get_matches()
        .and_then(|matches| Cli::from_arg_matches(&matches))
    {
        Ok(cli) => cli,
        Err(error) => {
            // clap prints usage errors to stderr (exit 2) and --help/--version to stdout (exit 0).
            let _ = error.print();
            return ExitCode::from(if error.use_stderr() { 2 } else { 0 });
        }
    };
    let choice = match cli.color {
        Color::Auto => anstream::ColorChoice::Auto,
        Color::Always => anstream::ColorChoice::Always,
        Color::Never => anstream::ColorChoice::Never,
    };
    choice.write_global();
    let stop = Arc::new(Stop::new());
    watch_signals(&stop);
    let result = match cli.command {
        Command::Snapshot(args) => snapshot::run(args, &stop),
        Command::Diff(args) => diff::run(args, &stop),
        Command::Export(args) => export::run(args),
        Command::Audit(args) => audit::run(args, &stop),
        Command::Completions { shell } => {
            let mut out = Vec::new();
            clap_complete::generate(shell, &mut command(), "envlock", &mut out);
            anstream::print!("{}", String::from_utf8_lossy(&out));
            Ok(ExitCode::SUCCESS)
        }
        Command::Man => man(),
    };
    // A signal decides the exit code, whatever error stopping caused on the way out.
    if let Some(signal) = stop.requested() {
        // What the way out could not undo is still said.
        if let Err(error) = &result {
            if let Some(envlock::Error::NotRemoved { .. }) = error.downcast_ref() {
                terminal::error(error);
            }
        }
        terminal::error(&envlock::Error::Interrupted { signal }.into());
        return ExitCode::from((128 + signal).clamp(0, 255) as u8);
    }
    match result {
        Ok(code) => code,
        Err(error) => {
            terminal::error(&error);
            ExitCode::from(2)
        }
    }
}

/// The man page of envlock and its commands, one roff document.
fn man() -> anyhow::Result<ExitCode> {
    let command = command();
    let mut out = Vec::new();
    clap_mangen::Man::new(command.clone()).render(&mut out)?;
    for sub in command.get_subcommands().filter(|sub| !sub.is_hide_set()) {
        let title = format!("envlock-{}", sub.get_name());
        clap_mangen::Man::new(sub.clone().version(env!("CARGO_PKG_VERSION")))
            .title(title)
            .render(&mut out)?;
    }
    anstream::print!("{}", String::from_utf8_lossy(&out));
    Ok(ExitCode::SUCCESS)
}

/// Turns SIGINT, SIGTERM, SIGHUP and SIGQUIT into a stop request (on a thread of their own).
/// Only the first one counts: a second signal during cleanup does not cut it short, since
/// no signal kills envlock once this is in place.
fn watch_signals(stop: &Arc<Stop>) {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGQUIT, SIGTERM};
    let Ok(mut signals) = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP, SIGQUIT])
    else {
        return;
    };
    let stop = stop.clone();
    std::thread::spawn(move || {
        for signal in signals.forever() {
            stop.request(signal);
        }
    });
}
