//! One cfg for the test suite: `envlock_docker` when this machine has a Docker engine's
//! socket (or `DOCKER_HOST` names one), or under `CI=true`, where a missing engine must fail
//! the Docker tests rather than skip them. Without it, those tests report themselves ignored
//! ("needs a Docker engine") instead of passing. The library and the binary do not read it.

fn main() {
    println!("cargo::rustc-check-cfg=cfg(envlock_docker)");
    println!("cargo::rerun-if-env-changed=DOCKER_HOST");
    println!("cargo::rerun-if-env-changed=CI");
    println!("cargo::rerun-if-changed=/var/run/docker.sock");
    let ci = std::env::var("CI").is_ok_and(|value| value == "true");
    let host = std::env::var("DOCKER_HOST").is_ok_and(|value| !value.is_empty());
    let socket = std::path::Path::new("/var/run/docker.sock").exists();
    if ci || host || socket {
        println!("cargo::rustc-cfg=envlock_docker");
    }
}
