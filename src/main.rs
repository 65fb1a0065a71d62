//! The `envlock` command: everything happens in the library's CLI layer.
fn main() -> std::process::ExitCode {
    envlock::cli::run()
}
