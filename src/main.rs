fn main() -> std::process::ExitCode {
    envlock::cli::run()
}
