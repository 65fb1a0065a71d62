//! The engine failing one call of a capture (issue 20): an error status, a stream cut
//! mid-body, a response that never comes. Through [`relay::Relay`], a relay on a unix socket
//! between envlock and the real engine, each test breaks one chosen request of a capture of a
//! real image and checks the way out: exit 2 naming what failed (or 143 for a SIGTERM during
//! a stall), no lock written, no container of envlock's left.
//!
//! `ENVLOCK_RELAY_LOG=1` prints every request the relay forwards.

#[path = "relay.rs"]
mod relay;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use relay::{Action, Call, Fault, Relay};

use crate::docker::{containers, engine, private};
use crate::support::*;

/// envlock's containers of `image`, running or not.
fn leftovers(image: &str) -> Vec<String> {
    containers(
        &["label=org.envlock.role", &format!("ancestor={image}")],
        true,
    )
}

/// Removes what a failing test left, so one failure does not leak into the machine.
fn clean(image: &str) {
    for id in leftovers(image) {
        let _ = Command::new("docker").args(["rm", "-f", &id]).output();
    }
}

/// A lock path in a fresh folder (the folder is kept alive by the caller).
fn lock_in(dir: &tempfile::TempDir) -> PathBuf {
    dir.path().join("image.lock")
}

/// `envlock ARGS -o OUT` with the engine reached through `relay`.
fn through(relay: &Relay, args: &[&str], out: &Path) -> Command {
    let mut command = envlock();
    command
        .args(args)
        .arg("-o")
        .arg(out)
        .env("DOCKER_HOST", relay.host())
        .env("ENVLOCK_PROBE_TIMEOUT", "120");
    command
}

/// Checks the way out of a run whose engine failed fault 0 of `relay`: exit 2, a message
/// holding every one of `names` (case-insensitive), no lock at `out`, no container left.
fn assert_failed_cleanly(run: &Run, relay: &Relay, image: &str, out: &Path, names: &[&str]) {
    let log = relay.log_text();
    let left = leftovers(image);
    clean(image);
    assert!(
        relay.fired(0) > 0,
        "the fault never fired; requests:\n{log}"
    );
    eprintln!("exit {}; stderr:\n{}", run.code, run.stderr);
    if let Ok(text) = std::fs::read_to_string(out) {
        let lock: toml::Table = text.parse().unwrap();
        let packages = lock
            .get("packages")
            .and_then(|p| p.as_array())
            .map_or(0, Vec::len);
        eprintln!(
            "the lock written: {packages} packages, [platform] {}",
            lock.get("platform")
                .map_or(String::new(), |p| p.to_string().replace('\n', "; "))
        );
    }
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
    assert_eq!(
        run.code, 2,
        "a failed engine call is exit 2\nstderr:\n{}\nrequests:\n{log}",
        run.stderr
    );
    let lower = run.stderr.to_lowercase();
    for name in names {
        assert!(
            lower.contains(&name.to_lowercase()),
            "the message names `{name}`:\n{}",
            run.stderr
        );
    }
    assert!(!out.exists(), "a lock was written despite the failure");
    assert!(left.is_empty(), "containers left behind: {left:?}");
}

/// Runs `snapshot --image IMAGE EXTRA -o LOCK` through a relay applying `fault`, and checks
/// that it failed cleanly, its message naming `names`.
fn snapshot_under(test: &str, extra: &[&str], fault: Fault, names: &[&str]) {
    let image = private("dist-packages", test);
    let relay = Relay::start(vec![fault]);
    let dir = tempfile::tempdir().unwrap();
    let out = lock_in(&dir);
    let mut args = vec!["snapshot", "--image", &image];
    args.extend(extra);
    let run = run(&mut through(&relay, &args, &out));
    assert_failed_cleanly(&run, &relay, &image, &out, names);
}

/// The static capture reads the site folder of the image's Python in one archive GET.
const SITE: &str = "path=/usr/local/lib/python3.11/dist-packages";

#[cfg_attr(not(envlock_docker), ignore = "needs a Docker engine")]
#[test]
fn the_relay_passes_a_capture_through_unchanged() {
    if !engine() {
        return;
    }
    let image = private("dist-packages", "relay-clean");
    let relay = Relay::start(Vec::new());
    for extra in [&["--no-exec"][..], &[][..]] {
        let direct = snapshot(envlock().args(["snapshot", "--image", &image]).args(extra));
        let dir = tempfile::tempdir().unwrap();
        let out = lock_in(&dir);
        let mut args = vec!["snapshot", "--image", image.as_str()];
        args.extend(extra);
        let relayed = run(&mut through(&relay, &args, &out));
        assert_eq!(relayed.code, 0, "{}\n{}", relayed.stderr, relay.log_text());
        let relayed: toml::Table = std::fs::read_to_string(&out).unwrap().parse().unwrap();
        assert_eq!(relayed, direct, "the relay changed the capture {extra:?}");
    }
    let log = relay.log();
    let seen = |call: Call| log.iter().any(|logged| logged.call == call);
    for call in [
        Call::ImageInspect,
        Call::ContainerCreate,
        Call::ArchiveHead,
        Call::ArchiveGet,
        Call::ContainerAttach,
        Call::ContainerRemove,
    ] {
        assert!(seen(call), "no {call:?} among:\n{}", relay.log_text());
    }
    assert!(
        log.iter().all(|logged| logged.fault.is_none()),
        "{}",
        relay.log_text()
    );
    assert!(leftovers(&image).is_empty());
    let socket = relay.socket().to_path_buf();
    drop(relay);
    assert!(!socket.exists(), "the relay's socket outlived it");
}

#[cfg_attr(not(envlock_docker), ignore = "needs a Docker engine")]
#[test]
fn image_inspect_answering_500() {
    if !engine() {
        return;
    }
    snapshot_under(
        "fault-inspect",
        &[],
        Fault::on(
            Call::ImageInspect,
            &[],
            Action::Status(500, "injected: inspect failed".into()),
        )
        .nth(1),
        &["engine", "inspect", "injected: inspect failed"],
    );
}

#[cfg_attr(not(envlock_docker), ignore = "needs a Docker engine")]
#[test]
fn container_create_answering_500() {
    if !engine() {
        return;
    }
    snapshot_under(
        "fault-create",
        &[],
        Fault::on(
            Call::ContainerCreate,
            &[],
            Action::Status(500, "injected: create failed".into()),
        ),
        &["engine", "creat", "injected: create failed"],
    );
}

#[cfg_attr(not(envlock_docker), ignore = "needs a Docker engine")]
#[test]
fn the_site_folder_archive_answering_500() {
    if !engine() {
        return;
    }
    snapshot_under(
        "fault-site-500",
        &["--no-exec"],
        Fault::on(
            Call::ArchiveGet,
            &[SITE],
            Action::Status(500, "injected: archive failed".into()),
        ),
        &["engine", "/usr/local/lib/python3.11/dist-packages"],
    );
}

#[cfg_attr(not(envlock_docker), ignore = "needs a Docker engine")]
#[test]
fn the_site_folder_archive_cut_mid_body() {
    if !engine() {
        return;
    }
    snapshot_under(
        "fault-site-reset",
        &["--no-exec"],
        Fault::on(Call::ArchiveGet, &[SITE], Action::ResetAfter(8 << 10)),
        &["engine", "/usr/local/lib/python3.11/dist-packages"],
    );
}

#[cfg_attr(not(envlock_docker), ignore = "needs a Docker engine")]
#[test]
fn the_site_folder_archive_ending_short() {
    if !engine() {
        return;
    }
    // Whole chunks, then the connection ends without the last one.
    snapshot_under(
        "fault-site-short",
        &["--no-exec"],
        Fault::raw("GET", &["/archive", SITE], Action::Truncate(64 << 10)),
        &["engine", "/usr/local/lib/python3.11/dist-packages"],
    );
}

#[cfg_attr(not(envlock_docker), ignore = "needs a Docker engine")]
#[test]
fn os_release_answering_500() {
    if !engine() {
        return;
    }
    snapshot_under(
        "fault-os-release",
        &["--no-exec"],
        Fault::on(
            Call::ArchiveGet,
            // `/etc/os-release` is a link: the GET reads where the stat said it points.
            &["os-release"],
            Action::Status(500, "injected: archive failed".into()),
        ),
        &["engine", "os-release"],
    );
}

#[cfg_attr(not(envlock_docker), ignore = "needs a Docker engine")]
#[test]
fn os_release_stat_answering_500() {
    if !engine() {
        return;
    }
    snapshot_under(
        "fault-os-release-stat",
        &["--no-exec"],
        Fault::on(
            Call::ArchiveHead,
            &["path=/etc/os-release"],
            Action::Status(500, "injected: stat failed".into()),
        ),
        &["engine", "/etc/os-release"],
    );
}

#[cfg_attr(not(envlock_docker), ignore = "needs a Docker engine")]
#[test]
fn the_export_stream_cut_mid_body() {
    if !engine() {
        return;
    }
    snapshot_under(
        "fault-export",
        &["--layers"],
        Fault::on(Call::ImageExport, &[], Action::ResetAfter(1 << 20)),
        &["engine", "export"],
    );
}

#[cfg_attr(not(envlock_docker), ignore = "needs a Docker engine")]
#[test]
fn sigterm_during_a_stalled_archive_read() {
    if !engine() {
        return;
    }
    let image = private("dist-packages", "fault-stall");
    // No byte of the answer, then the head and some of the body.
    for stall in [Action::Stall, Action::StallAfter(16 << 10)] {
        let relay = Relay::start(vec![Fault::on(Call::ArchiveGet, &[SITE], stall.clone())]);
        let dir = tempfile::tempdir().unwrap();
        let out = lock_in(&dir);
        let child = through(&relay, &["snapshot", "--image", &image, "--no-exec"], &out)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stalled = relay.wait_fired(0, Duration::from_secs(120));
        // Held a moment: envlock is waiting on the answer, not passing by.
        std::thread::sleep(Duration::from_millis(500));
        must(Command::new("kill").args(["-TERM", &child.id().to_string()]));
        let output = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        let left = leftovers(&image);
        clean(&image);
        eprintln!(
            "{stall:?}: exit {:?}; stderr:\n{stderr}",
            output.status.code()
        );
        assert!(stalled, "the stall never began:\n{}", relay.log_text());
        assert_eq!(output.status.code(), Some(143), "{stall:?}: {stderr}");
        assert!(stderr.contains("interrupted by SIGTERM"), "{stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
        assert!(!out.exists(), "{stall:?}: a lock was written");
        assert!(
            left.is_empty(),
            "{stall:?}: containers left behind: {left:?}"
        );
    }
}

/// Not a fault: prints the Engine API calls of `snapshot --image`, `snapshot --image
/// --no-exec` and `diff LOCK IMAGE` with a golden case, for whoever adds a fault for each.
#[cfg_attr(not(envlock_docker), ignore = "needs a Docker engine")]
#[test]
#[ignore = "prints the calls a capture makes; run with --ignored --nocapture"]
fn list_the_calls_of_each_capture() {
    if !engine() {
        return;
    }
    let image = private("dist-packages", "relay-calls");
    let project = tempfile::tempdir().unwrap();
    std::fs::write(project.path().join("in.txt"), "1\n").unwrap();
    std::fs::write(
        project.path().join("envlock.toml"),
        "[[golden]]\nname = \"echo\"\ncommand = [\"python3\", \"-c\", \
         \"import sys; print(float(open(sys.argv[1]).read()))\", \"{input}\"]\n\
         input = \"in.txt\"\nformat = \"numbers\"\n",
    )
    .unwrap();
    let dev = project.path().join("dev.lock");
    let made = run(envlock()
        .args(["snapshot", "--python"])
        .arg(system_python())
        .arg("-o")
        .arg(&dev)
        .current_dir(project.path()));
    assert_eq!(made.code, 0, "{}", made.stderr);
    let runs: [(&str, Vec<String>); 4] = [
        (
            "snapshot --image",
            vec!["snapshot".into(), "--image".into(), image.clone()],
        ),
        (
            "snapshot --image --no-exec",
            vec![
                "snapshot".into(),
                "--image".into(),
                image.clone(),
                "--no-exec".into(),
            ],
        ),
        (
            "snapshot --image --layers",
            vec![
                "snapshot".into(),
                "--image".into(),
                image.clone(),
                "--layers".into(),
            ],
        ),
        (
            "diff LOCK IMAGE (golden)",
            vec!["diff".into(), dev.display().to_string(), image.clone()],
        ),
    ];
    for (name, args) in runs {
        let relay = Relay::start(Vec::new());
        // Only the diff runs where envlock.toml names the golden case.
        let empty = tempfile::tempdir().unwrap();
        let folder = if name.starts_with("diff") {
            project.path()
        } else {
            empty.path()
        };
        let done = run(envlock()
            .args(&args)
            .env("DOCKER_HOST", relay.host())
            .current_dir(folder));
        println!("== {name}: exit {}\n{}", done.code, relay.log_text());
        println!("stderr: {}", done.stderr);
    }
    assert!(leftovers(&image).is_empty());
}
