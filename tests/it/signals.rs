//! Stopped by a signal at any phase — the probe in an image, a golden case in an image, the
//! local probe, a local golden command, a local golden server — envlock removes every
//! container it created, stops its child process groups, writes no lock, and exits with
//! 128 + the signal's number.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::docker::{containers, containers_of, need_engine, private};
use crate::support::*;

const SIGNALS: [(&str, i32); 4] = [("INT", 2), ("TERM", 15), ("HUP", 1), ("QUIT", 3)];

/// One handler serves every signal: a phase in an image (seconds per run) is stopped by one
/// of them, a different one each; the local phases, cheap, check all four.
const TERM: (&str, i32) = SIGNALS[1];
const INT: (&str, i32) = SIGNALS[0];

/// Waits (bounded) until `ready`, then sends `signal` to `child` and checks how it ended.
fn interrupt(mut child: Child, ready: impl Fn() -> bool, (name, number): (&str, i32)) {
    let start = Instant::now();
    while !ready() {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "the phase to interrupt never began"
        );
        if let Ok(Some(status)) = child.try_wait() {
            panic!("envlock ended before the signal: {status}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    must(Command::new("kill").args([format!("-{name}"), child.id().to_string()]));
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        output.status.code(),
        Some(128 + number),
        "SIG{name}: {stderr}"
    );
    assert!(
        stderr.contains(&format!("interrupted by SIG{name}")),
        "SIG{name}: {stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}

fn running(image: &str, role: &str) -> bool {
    let label = format!("label=org.envlock.role={role}");
    !containers(&[&label, &format!("ancestor={image}")], false).is_empty()
}

fn spawn(command: &mut Command) -> Child {
    command
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Whether process `pid` is gone (or a zombie about to be reaped).
fn gone(pid: &str) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
    }
}

fn assert_gone_soon(pid_file: &Path) {
    let pid = std::fs::read_to_string(pid_file).unwrap();
    let pid = pid.trim();
    let start = Instant::now();
    while !gone(pid) {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "process {pid} outlived envlock"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[cfg_attr(not(envlock_docker), ignore = "needs a Docker engine")]
#[test]
fn a_signal_during_the_probe_in_an_image() {
    need_engine();
    let image = private("hang-python", "signals");
    {
        let signal = TERM;
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("image.lock");
        let child = spawn(
            envlock()
                .args(["snapshot", "--image", &image, "-o"])
                .arg(&out)
                .env("ENVLOCK_PROBE_TIMEOUT", "300"),
        );
        interrupt(child, || running(&image, "probe"), signal);
        assert!(containers_of(&image).is_empty(), "containers left");
        assert!(!out.exists(), "a lock was written");
    }
}

#[cfg_attr(not(envlock_docker), ignore = "needs a Docker engine")]
#[test]
fn a_signal_during_a_golden_case_in_an_image() {
    need_engine();
    let image = crate::docker::model_image("salary", "signals", |_| {});
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("input.txt"), "1\n").unwrap();
    std::fs::write(
        dir.path().join("envlock.toml"),
        "[[golden]]\nname = \"slow\"\ncommand = [\"sleep\", \"300\"]\ninput = \"input.txt\"\n\
         timeout = 600\n",
    )
    .unwrap();
    {
        let signal = INT;
        let child = spawn(
            envlock()
                .args(["snapshot", "--image", &image])
                .current_dir(dir.path()),
        );
        interrupt(child, || running(&image, "golden"), signal);
        assert!(containers_of(&image).is_empty(), "containers left");
    }
}

#[test]
fn every_signal_during_the_local_probe_stops_its_process_group() {
    let dir = tempfile::tempdir().unwrap();
    let pid_file = dir.path().join("child.pid");
    let script = dir.path().join("slow-python");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nsleep 300 &\necho $! > {}.tmp\nmv {0}.tmp {0}\nwait\n",
            pid_file.display()
        ),
    )
    .unwrap();
    must(Command::new("chmod").arg("755").arg(&script));
    for signal in SIGNALS {
        let _ = std::fs::remove_file(&pid_file);
        let out = dir.path().join("dev.lock");
        let child = spawn(
            envlock()
                .args(["snapshot", "--python"])
                .arg(&script)
                .arg("-o")
                .arg(&out)
                .env("ENVLOCK_PROBE_TIMEOUT", "300"),
        );
        interrupt(child, || pid_file.exists(), signal);
        assert_gone_soon(&pid_file);
        assert!(!out.exists(), "a lock was written");
    }
}

#[test]
fn every_signal_during_a_local_golden_command_or_server() {
    let dir = tempfile::tempdir().unwrap();
    let pid_file = dir.path().join("worker.pid");
    std::fs::write(dir.path().join("input.json"), "{}").unwrap();
    // A command that forks and waits, and a server whose worker never answers.
    std::fs::write(
        dir.path().join("envlock.toml"),
        format!(
            "[[golden]]\nname = \"slow\"\ninput = \"input.json\"\ntimeout = 600\n\
             command = [\"sh\", \"-c\", \"sleep 300 & echo $! > {0}.tmp; mv {0}.tmp {0}; wait\"]\n",
            pid_file.display()
        ),
    )
    .unwrap();
    for signal in SIGNALS {
        let _ = std::fs::remove_file(&pid_file);
        let child = spawn(
            envlock()
                .args(["snapshot", "--python"])
                .arg(system_python())
                .current_dir(dir.path()),
        );
        interrupt(child, || pid_file.exists(), signal);
        assert_gone_soon(&pid_file);
    }
}

#[test]
fn a_local_golden_server_and_its_workers_stop_after_the_case() {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let pid_file = dir.path().join("worker.pid");
    std::fs::write(dir.path().join("input.json"), "{}").unwrap();
    // Like gunicorn: the process envlock starts forks a worker that serves, and waits.
    std::fs::write(
        dir.path().join("server.py"),
        r#"import http.server, json, os, sys
port, pid_file = int(sys.argv[1]), sys.argv[2]
class Handler(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        body = json.dumps({"value": 1.5}).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
server = http.server.HTTPServer(("127.0.0.1", port), Handler)
if os.fork() == 0:
    open(pid_file + ".tmp", "w").write(str(os.getpid()))
    os.rename(pid_file + ".tmp", pid_file)
    server.serve_forever()
else:
    os.wait()
"#,
    )
    .unwrap();
    std::fs::write(
        dir.path().join("envlock.toml"),
        format!(
            "[[golden]]\nname = \"served\"\ninput = \"input.json\"\n\
             command = [\"python3\", \"server.py\", \"{port}\", \"{}\"]\n\
             http = {{ port = {port}, path = \"/predict\" }}\n",
            pid_file.display()
        ),
    )
    .unwrap();
    let run = run(envlock()
        .args(["snapshot", "--python"])
        .arg(system_python())
        .current_dir(dir.path()));
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.contains("value"), "{}", run.stdout);
    assert_gone_soon(&pid_file);
    assert!(
        std::net::TcpListener::bind(("127.0.0.1", port)).is_ok(),
        "the worker's port is still taken"
    );
}

#[cfg_attr(not(envlock_docker), ignore = "needs a Docker engine")]
#[test]
fn a_stop_while_audit_creates_containers_leaves_none() {
    need_engine();
    // Stops land at every moment of the captures, creates in flight included: a container
    // the engine finishes creating after envlock dropped the request must go too.
    let images: Vec<String> = ["dist-packages", "venv", "no-shell", "interpreters"]
        .iter()
        .map(|name| private(name, "audit-stop"))
        .collect();
    for delay in [50, 100, 150, 200, 300, 400, 600] {
        let mut child = spawn(envlock().args(["audit", "--jobs", "4"]).args(&images));
        std::thread::sleep(Duration::from_millis(delay));
        if child.try_wait().unwrap().is_some() {
            continue; // finished first: nothing to stop
        }
        must(Command::new("kill").args(["-TERM", &child.id().to_string()]));
        let output = child.wait_with_output().unwrap();
        // On a loaded machine the signal may come before envlock has set up its handling
        // (the process still starting, no container made): then the signal ends it.
        let before_handling = std::os::unix::process::ExitStatusExt::signal(&output.status);
        assert!(
            output.status.code() == Some(143) || before_handling == Some(15),
            "after {delay} ms: {:?}",
            output.status
        );
        for image in &images {
            let left = containers_of(image);
            assert!(left.is_empty(), "after {delay} ms: {image} left {left:?}");
        }
    }
}

#[test]
fn a_signal_while_a_registry_is_answering_writes_no_lock() {
    // A registry that accepts and never answers: envlock is waiting on it when stopped.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = silent.local_addr().unwrap();
    let accepted = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = accepted.clone();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in silent.incoming() {
            held.push(stream);
            flag.store(true, std::sync::atomic::Ordering::SeqCst);
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.lock");
    let child = spawn(
        envlock()
            .args([
                "snapshot",
                "--image",
                &format!("registry:{address}/ml:v1"),
                "-o",
            ])
            .arg(&out),
    );
    interrupt(
        child,
        || accepted.load(std::sync::atomic::Ordering::SeqCst),
        ("TERM", 15),
    );
    assert!(!out.exists());
}
