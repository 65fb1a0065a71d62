//! What CI throws at a gate: several runs at once on one image and one probe cache, and the
//! Docker engine going away in the middle of a run.

use std::os::unix::process::CommandExt as _;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::docker::{containers_of, need_engine, private};
use crate::support::*;

#[cfg_attr(not(envlock_docker), ignore = "needs a Docker engine")]
#[test]
fn eight_diffs_at_once_on_one_image_and_one_probe_cache() {
    need_engine();
    let image = private("dist-packages", "concurrent");
    let python = ml_venv();
    let cache = tempfile::tempdir().unwrap();
    let diff = || {
        let mut command = envlock();
        command
            .env("ENVLOCK_CACHE_DIR", cache.path())
            .arg("diff")
            .arg(format!("python:{}", python.display()))
            .args([&image, "--format", "json"]);
        command
    };
    let runs: Vec<Run> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..8).map(|_| scope.spawn(|| run(&mut diff()))).collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for run in &runs {
        assert_eq!(run.code, 1, "{}", run.stderr);
        assert_eq!(run.stdout, runs[0].stdout, "the runs disagree");
    }
    let report: serde_json::Value = serde_json::from_str(&runs[0].stdout).unwrap();
    assert!(report["findings"].as_array().unwrap().len() > 3);
    assert!(containers_of(&image).is_empty(), "containers left behind");
    let cached: Vec<_> = std::fs::read_dir(cache.path().join("interpreters"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .collect();
    assert_eq!(cached.len(), 1, "{cached:?}");
    let _: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&cached[0]).unwrap()).expect("the cache is intact");
    // And it is used: no Python answers within a millisecond.
    let again = run(envlock()
        .env("ENVLOCK_CACHE_DIR", cache.path())
        .env("ENVLOCK_PROBE_TIMEOUT", "0.001")
        .arg("snapshot")
        .arg("--python")
        .arg(&python));
    assert_eq!(again.code, 0, "the cache was not used: {}", again.stderr);
}

#[cfg_attr(not(envlock_docker), ignore = "needs a Docker engine")]
#[test]
fn the_engine_going_away_mid_run_is_exit_2_naming_it() {
    need_engine();
    let image = private("hang-python", "engine-away");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    // The engine, reached over loopback TCP as a remote engine would be, through a relay
    // this test can cut.
    let mut relay = Command::new(crate::support::tool("socat"))
        .arg(format!("TCP-LISTEN:{port},bind=127.0.0.1,reuseaddr,fork"))
        .arg("UNIX-CONNECT:/var/run/docker.sock")
        .process_group(0)
        .spawn()
        .expect("socat starts");
    let cut = |relay: &mut std::process::Child| {
        // SIGKILL to the relay and the connections it forked (its process group).
        // SAFETY: killpg only sends a signal.
        unsafe { libc::killpg(relay.id() as libc::pid_t, libc::SIGKILL) };
        let _ = relay.wait();
    };
    let start = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the relay never listened"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("image.lock");
    let host = format!("tcp://127.0.0.1:{port}");
    let mut child = envlock()
        .args(["snapshot", "--image", &image, "-o"])
        .arg(&out)
        .env("DOCKER_HOST", &host)
        .env("ENVLOCK_PROBE_TIMEOUT", "300")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while containers_of(&image).is_empty() {
        let ended = child.try_wait().unwrap().is_some();
        if ended || start.elapsed() > Duration::from_secs(60) {
            cut(&mut relay);
            let _ = child.kill();
            let output = child.wait_with_output().unwrap();
            panic!(
                "the probe never started:\n{}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(300));
    cut(&mut relay);
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            panic!("envlock hung after the engine went away");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    // envlock could not reach the engine to remove its probe; the test does, also one
    // whose create was in flight when the relay was cut (it lands on the engine's time).
    let settle = Instant::now();
    while settle.elapsed() < Duration::from_secs(2) {
        for leftover in containers_of(&image) {
            must(Command::new("docker").args(["rm", "-f", &leftover]));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&host),
        "the message names the engine: {stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(!out.exists(), "a lock was written");
}
