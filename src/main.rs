//! The `envlock` command: flags, `envlock.toml` and `ENVLOCK_*` resolved into the library's
//! settings, the library's answers printed, and the exit code picked. The only crate that
//! prints or reads the process environment.

mod cli;

fn main() -> std::process::ExitCode {
    cli::run()
}
