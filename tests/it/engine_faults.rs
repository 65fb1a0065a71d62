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

use crate::docker::{containers_of, need_engine, private};
use crate::support::*;

/// Removes what a failing test left, so one failure does not leak into the machine.
fn clean(image: &str) {
    for id in containers_of(image) {
        let _ = Command::new("docker")
            .args(["rm", "-f", "-v", &id])
            .output();
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
    let left = containers_of(image);
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
    need_engine();
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
    assert!(containers_of(&image).is_empty());
    let socket = relay.socket().to_path_buf();
    drop(relay);
    assert!(!socket.exists(), "the relay's socket outlived it");
}

#[cfg_attr(not(envlock_docker), ignore = "needs a Docker engine")]
#[test]
fn image_inspect_answering_500() {
    need_engine();
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
    need_engine();
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
    need_engine();
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
    need_engine();
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
    need_engine();
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
    need_engine();
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
    need_engine();
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
    need_engine();
    snapshot_under(
        "fault-export",
        &["--layers"],
        Fault::on(Call::ImageExport, &[], Action::ResetAfter(1 << 20)),
        &["engine", "export"],
    );
}

/// The package database, read whole with a `GET` right after its stat (`HEAD`) found it.
const DPKG: &str = "path=/var/lib/dpkg/status";

/// The engine's answer to an archive `GET` of a path it does not have (as Docker 20.10
/// words it).
fn lost_answer() -> Action {
    Action::Status(
        404,
        "Could not find the file /var/lib/dpkg/status in container (injected)".into(),
    )
}

/// The archive `GET`s of `contains` in the relay's log, with their answers.
fn archive_gets(relay: &Relay, contains: &str) -> Vec<Option<u16>> {
    relay
        .log()
        .iter()
        .filter(|logged| logged.call == Call::ArchiveGet && logged.target.contains(contains))
        .map(|logged| logged.status)
        .collect()
}

/// A busy engine answering 404 for a path it just stat'ed (its mount race around
/// concurrent copies of one container), or cutting an archive read once: the read is asked
/// again and the capture equals a clean one; no container is left.
#[cfg_attr(not(envlock_docker), ignore = "needs a Docker engine")]
#[test]
fn an_archive_read_lost_or_cut_once_is_asked_again() {
    need_engine();
    let image = private("dist-packages", "fault-lost-once");
    let clean_lock = snapshot(envlock().args(["snapshot", "--image", &image, "--no-exec"]));
    let cases = [
        (
            "404 once after a stat",
            DPKG,
            Fault::on(Call::ArchiveGet, &[DPKG], lost_answer())
                .after_stat()
                .nth(1),
        ),
        (
            "reset once",
            SITE,
            Fault::on(Call::ArchiveGet, &[SITE], Action::ResetAfter(8 << 10)).nth(1),
        ),
        (
            "short once",
            SITE,
            Fault::raw("GET", &["/archive", SITE], Action::Truncate(64 << 10)).nth(1),
        ),
    ];
    for (name, path, fault) in cases {
        let relay = Relay::start(vec![fault]);
        let dir = tempfile::tempdir().unwrap();
        let out = lock_in(&dir);
        let done = run(&mut through(
            &relay,
            &["snapshot", "--image", &image, "--no-exec"],
            &out,
        ));
        let left = containers_of(&image);
        clean(&image);
        assert_eq!(
            relay.fired(0),
            1,
            "{name}: the fault fired once\n{}",
            relay.log_text()
        );
        assert_eq!(
            done.code,
            0,
            "{name}: a read lost once is asked again\n{}\n{}",
            done.stderr,
            relay.log_text()
        );
        let gets = archive_gets(&relay, path);
        assert!(
            gets.len() >= 2 && gets.last() == Some(&Some(200)),
            "{name}: the read was asked again and answered: {gets:?}\n{}",
            relay.log_text()
        );
        let relayed: toml::Table = std::fs::read_to_string(&out).unwrap().parse().unwrap();
        assert_eq!(relayed, clean_lock, "{name}: unlike a clean capture");
        assert!(left.is_empty(), "{name}: containers left behind: {left:?}");
    }
}

/// An engine that keeps answering 404 for a path its stat finds: asked again a bounded
/// number of times, then exit 2 naming the path and what the engine did.
#[cfg_attr(not(envlock_docker), ignore = "needs a Docker engine")]
#[test]
fn an_archive_read_lost_every_time_fails_cleanly() {
    need_engine();
    let image = private("dist-packages", "fault-lost-always");
    let relay = Relay::start(vec![
        Fault::on(Call::ArchiveGet, &[DPKG], lost_answer()).after_stat()
    ]);
    let dir = tempfile::tempdir().unwrap();
    let out = lock_in(&dir);
    let done = run(&mut through(
        &relay,
        &["snapshot", "--image", &image, "--no-exec"],
        &out,
    ));
    let gets = archive_gets(&relay, DPKG);
    assert_failed_cleanly(
        &done,
        &relay,
        &image,
        &out,
        &["engine", "/var/lib/dpkg/status", "404", "stat found it"],
    );
    assert_eq!(
        gets,
        vec![Some(404); 4],
        "4 tries in all\n{}",
        relay.log_text()
    );
}

/// Several captures at once against one engine, round after round (an audit's workers,
/// parallel CI jobs): none fails, each equals its image's capture made alone. They run
/// through one relay that injects nothing, so the engine's own 404s for paths it had
/// stat'ed (its mount race) are counted and printed.
#[cfg_attr(not(envlock_docker), ignore = "needs a Docker engine")]
#[test]
fn captures_at_once_against_a_busy_engine_all_succeed() {
    need_engine();
    const ROUNDS: usize = 3;
    const AT_ONCE: usize = 4;
    let images = [
        private("dist-packages", "busy-engine"),
        private("venv", "busy-engine"),
    ];
    let alone: Vec<toml::Table> = images
        .iter()
        .map(|image| snapshot(envlock().args(["snapshot", "--image", image, "--no-exec"])))
        .collect();
    let relay = Relay::start(Vec::new());
    let mut failures = Vec::new();
    for round in 0..ROUNDS {
        let runs: Vec<(usize, Run)> = std::thread::scope(|scope| {
            let started: Vec<_> = (0..AT_ONCE)
                .map(|worker| {
                    let which = worker % images.len();
                    let image = &images[which];
                    let relay = &relay;
                    scope.spawn(move || {
                        let dir = tempfile::tempdir().unwrap();
                        let out = lock_in(&dir);
                        let done = run(&mut through(
                            relay,
                            &["snapshot", "--image", image, "--no-exec"],
                            &out,
                        ));
                        let lock = std::fs::read_to_string(&out).unwrap_or_default();
                        (
                            which,
                            Run {
                                stdout: lock,
                                ..done
                            },
                        )
                    })
                })
                .collect();
            started.into_iter().map(|s| s.join().unwrap()).collect()
        });
        for (which, done) in runs {
            if done.code != 0 {
                failures.push(format!(
                    "round {round}, {}: exit {}\n{}",
                    images[which], done.code, done.stderr
                ));
            } else if done.stdout.parse::<toml::Table>().ok().as_ref() != Some(&alone[which]) {
                failures.push(format!(
                    "round {round}, {}: unlike its capture alone",
                    images[which]
                ));
            }
        }
    }
    let log = relay.log();
    let stat_found = |target: &str| {
        log.iter()
            .any(|l| l.method == "HEAD" && l.target == target && l.status == Some(200))
    };
    let lost = log
        .iter()
        .filter(|l| l.call == Call::ArchiveGet && l.status == Some(404) && stat_found(&l.target))
        .count();
    let gets = log.iter().filter(|l| l.call == Call::ArchiveGet).count();
    eprintln!(
        "busy engine: {} captures, {gets} archive GETs, {lost} answered 404 for a path a stat had found",
        ROUNDS * AT_ONCE
    );
    let left: Vec<String> = images
        .iter()
        .flat_map(|image| containers_of(image))
        .collect();
    for image in &images {
        clean(image);
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    assert!(left.is_empty(), "containers left behind: {left:?}");
}

#[cfg_attr(not(envlock_docker), ignore = "needs a Docker engine")]
#[test]
fn sigterm_during_a_stalled_archive_read() {
    need_engine();
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
        let left = containers_of(&image);
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
    need_engine();
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
    assert!(containers_of(&image).is_empty());
}

/// What a matrix case runs.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Runs {
    /// `snapshot --image IMAGE --no-exec`: static capture through the archive endpoint.
    Static,
    /// `snapshot --image IMAGE`: the probe runs in a container.
    Probe,
    /// `snapshot --image IMAGE --no-exec --layers`: the engine's image export too.
    Layers,
    /// `diff DEV.lock IMAGE --report json:…` with a golden case run in the image.
    Golden,
}

/// One cell of the matrix: a fault on a kind of call, and the way out expected.
struct Case {
    call: Call,
    fault: &'static str,
    run: Runs,
    build: fn() -> Fault,
    /// The exit expected.
    exit: i32,
    /// What the message names (case-insensitive), beyond the engine's host.
    names: &'static [&'static str],
}

/// The stalls' engine timeout: short so a stall ends soon, long enough that no other call
/// of a loaded machine runs out of it.
const STALL_LIMIT: &str = "10";
/// The probe's limit in a stall: a run is bounded by it, each call by the engine's.
const PROBE_LIMIT: &str = "20";

fn status(call: Call, contains: &'static [&'static str]) -> Fault {
    Fault::on(call, contains, Action::Status(500, "injected fault".into())).nth(1)
}

/// Every kind of Engine API call envlock makes, each with the faults that can befall it.
/// (envlock never calls `/_ping`, `logs` or the volume endpoints: versions come from
/// `/version`, output from `attach`, and a golden run's volume is made by its container's
/// create and goes with its removal.)
fn matrix() -> Vec<Case> {
    use Call::*;
    const STAT: &[&str] = &["path=/var/lib/dpkg/status"];
    macro_rules! case {
        ($call:expr, $fault:literal, $run:expr, $exit:expr, $names:expr, $build:expr) => {
            Case {
                call: $call,
                fault: $fault,
                run: $run,
                build: $build,
                exit: $exit,
                names: $names,
            }
        };
    }
    vec![
        case!(Version, "500", Runs::Static, 2, &["injected fault"], || {
            status(Version, &[])
        }),
        case!(
            Version,
            "stall",
            Runs::Static,
            2,
            &["ENVLOCK_ENGINE_TIMEOUT"],
            || { Fault::on(Version, &[], Action::Stall).nth(1) }
        ),
        case!(Version, "reset", Runs::Static, 2, &[], || {
            Fault::on(Version, &[], Action::ResetAfter(10)).nth(1)
        }),
        case!(
            ImageInspect,
            "500",
            Runs::Static,
            2,
            &["inspect", "injected fault"],
            || { status(ImageInspect, &[]) }
        ),
        case!(ImageInspect, "reset", Runs::Static, 2, &["inspect"], || {
            Fault::on(ImageInspect, &[], Action::ResetAfter(64)).nth(1)
        }),
        case!(ImageInspect, "short", Runs::Static, 2, &["inspect"], || {
            Fault::on(ImageInspect, &[], Action::Truncate(64)).nth(1)
        }),
        case!(
            ImageInspect,
            "stall",
            Runs::Static,
            2,
            &["inspect", "ENVLOCK_ENGINE_TIMEOUT"],
            || { Fault::on(ImageInspect, &[], Action::Stall).nth(1) }
        ),
        case!(
            ImageHistory,
            "500",
            Runs::Static,
            2,
            &["history", "injected fault"],
            || { status(ImageHistory, &[]) }
        ),
        case!(ImageHistory, "short", Runs::Static, 2, &["history"], || {
            Fault::on(ImageHistory, &[], Action::Truncate(32)).nth(1)
        }),
        case!(
            ImageHistory,
            "stall",
            Runs::Static,
            2,
            &["history", "ENVLOCK_ENGINE_TIMEOUT"],
            || { Fault::on(ImageHistory, &[], Action::Stall).nth(1) }
        ),
        case!(
            ContainerCreate,
            "500",
            Runs::Static,
            2,
            &["creat", "injected fault"],
            || { status(ContainerCreate, &[]) }
        ),
        case!(
            ContainerCreate,
            "stall",
            Runs::Static,
            2,
            &["creat", "ENVLOCK_ENGINE_TIMEOUT"],
            || { Fault::on(ContainerCreate, &[], Action::Stall).nth(1) }
        ),
        // The engine creates the container; its answer is cut after its head.
        case!(
            ContainerCreate,
            "reset",
            Runs::Static,
            2,
            &["creat"],
            || { Fault::on(ContainerCreate, &[], Action::ResetAfter(0)).nth(1) }
        ),
        // The engine creates the container; its answer never arrives.
        case!(
            ContainerCreate,
            "stall after",
            Runs::Static,
            2,
            &["creat", "ENVLOCK_ENGINE_TIMEOUT"],
            || { Fault::on(ContainerCreate, &[], Action::StallAfter(0)).nth(1) }
        ),
        case!(
            ArchiveHead,
            "500",
            Runs::Static,
            2,
            &["/var/lib/dpkg/status"],
            || { status(ArchiveHead, STAT) }
        ),
        case!(
            ArchiveHead,
            "stall",
            Runs::Static,
            2,
            &["/var/lib/dpkg/status", "ENVLOCK_ENGINE_TIMEOUT"],
            || { Fault::on(ArchiveHead, STAT, Action::Stall).nth(1) }
        ),
        case!(ArchiveGet, "500", Runs::Static, 2, &[SITE_PATH], || status(
            ArchiveGet,
            &[SITE]
        )),
        case!(ArchiveGet, "reset", Runs::Static, 2, &[SITE_PATH], || {
            Fault::on(ArchiveGet, &[SITE], Action::ResetAfter(8 << 10))
        }),
        case!(ArchiveGet, "short", Runs::Static, 2, &[SITE_PATH], || {
            Fault::raw("GET", &["/archive", SITE], Action::Truncate(64 << 10))
        }),
        // The engine's mount race: asked again, the read succeeds, the run too.
        case!(
            ArchiveGet,
            "404 once after a stat",
            Runs::Static,
            0,
            &[],
            || {
                Fault::on(ArchiveGet, STAT, lost_answer())
                    .after_stat()
                    .nth(1)
            }
        ),
        case!(
            ArchiveGet,
            "404 always after a stat",
            Runs::Static,
            2,
            &["/var/lib/dpkg/status", "404"],
            || Fault::on(ArchiveGet, STAT, lost_answer()).after_stat()
        ),
        case!(ArchiveGet, "reset once", Runs::Static, 0, &[], || {
            Fault::on(ArchiveGet, &[SITE], Action::ResetAfter(8 << 10)).nth(1)
        }),
        case!(
            ArchiveGet,
            "stall",
            Runs::Static,
            2,
            &[SITE_PATH, "ENVLOCK_ENGINE_TIMEOUT"],
            || { Fault::on(ArchiveGet, &[SITE], Action::Stall) }
        ),
        case!(
            ArchiveGet,
            "stall mid-body",
            Runs::Static,
            2,
            &[SITE_PATH, "ENVLOCK_ENGINE_TIMEOUT"],
            || { Fault::on(ArchiveGet, &[SITE], Action::StallAfter(16 << 10)) }
        ),
        case!(
            ImageExport,
            "500",
            Runs::Layers,
            2,
            &["export", "injected fault"],
            || { status(ImageExport, &[]) }
        ),
        case!(ImageExport, "reset", Runs::Layers, 2, &["export"], || {
            Fault::on(ImageExport, &[], Action::ResetAfter(1 << 20))
        }),
        case!(
            ImageExport,
            "stall mid-body",
            Runs::Layers,
            2,
            &["export", "ENVLOCK_ENGINE_TIMEOUT"],
            || { Fault::on(ImageExport, &[], Action::StallAfter(1 << 20)) }
        ),
        case!(
            ContainerAttach,
            "500",
            Runs::Probe,
            2,
            &["attach", "injected fault"],
            || { status(ContainerAttach, &[]) }
        ),
        case!(
            ContainerAttach,
            "stall",
            Runs::Probe,
            2,
            &["attach", "ENVLOCK_ENGINE_TIMEOUT"],
            || { Fault::on(ContainerAttach, &[], Action::Stall).nth(1) }
        ),
        // The upgrade's answer, then the connection closes: no output at all, which is not
        // the probe's answer (the message names the image whose probe it is).
        case!(ContainerAttach, "reset", Runs::Probe, 2, &["probe"], || {
            Fault::on(ContainerAttach, &[], Action::ResetAfter(0)).nth(1)
        }),
        case!(
            ContainerStart,
            "500",
            Runs::Probe,
            2,
            &["start", "injected fault"],
            || { status(ContainerStart, &[]) }
        ),
        case!(
            ContainerStart,
            "stall",
            Runs::Probe,
            2,
            &["start", "ENVLOCK_ENGINE_TIMEOUT"],
            || { Fault::on(ContainerStart, &[], Action::Stall).nth(1) }
        ),
        case!(
            ContainerWait,
            "500",
            Runs::Probe,
            2,
            &["wait", "injected fault"],
            || { status(ContainerWait, &[]) }
        ),
        // The engine answers a wait's head at once (its body when the container exits).
        case!(
            ContainerWait,
            "stall",
            Runs::Probe,
            2,
            &["wait", "ENVLOCK_ENGINE_TIMEOUT"],
            || { Fault::on(ContainerWait, &[], Action::Stall).nth(1) }
        ),
        case!(
            ArchivePut,
            "500",
            Runs::Golden,
            2,
            &["golden input", "injected fault"],
            || { status(ArchivePut, &[]) }
        ),
        case!(
            ArchivePut,
            "stall",
            Runs::Golden,
            2,
            &["golden input", "ENVLOCK_ENGINE_TIMEOUT"],
            || { Fault::on(ArchivePut, &[], Action::Stall).nth(1) }
        ),
        // Asked again: the second removal succeeds, the run too.
        case!(
            ContainerRemove,
            "500 once",
            Runs::Static,
            0,
            &[],
            || status(ContainerRemove, &[])
        ),
        // Refused every time: the run fails naming the container and its label.
        case!(
            ContainerRemove,
            "500 always",
            Runs::Static,
            2,
            &["would not remove", "org.envlock.role=", "docker rm -f"],
            || {
                Fault::on(
                    ContainerRemove,
                    &[],
                    Action::Status(500, "injected fault".into()),
                )
            }
        ),
        case!(
            ContainerRemove,
            "stall always",
            Runs::Static,
            2,
            &["would not remove", "org.envlock.role="],
            || { Fault::on(ContainerRemove, &[], Action::Stall) }
        ),
    ]
}

const SITE_PATH: &str = "/usr/local/lib/python3.11/dist-packages";

/// A project with a golden case and its dev lock (the system Python's), for `Runs::Golden`.
fn golden_project() -> tempfile::TempDir {
    let project = tempfile::tempdir().unwrap();
    std::fs::write(project.path().join("in.txt"), "1\n").unwrap();
    std::fs::write(
        project.path().join("envlock.toml"),
        "[[golden]]\nname = \"echo\"\ncommand = [\"python3\", \"-c\", \
         \"import sys; print(float(open(sys.argv[1]).read()))\", \"{input}\"]\n\
         input = \"in.txt\"\nformat = \"numbers\"\n",
    )
    .unwrap();
    let made = run(envlock()
        .args(["snapshot", "--python"])
        .arg(system_python())
        .args(["-o", "dev.lock"])
        .current_dir(project.path()));
    assert_eq!(made.code, 0, "{}", made.stderr);
    project
}

/// envlock's volumes that no container holds.
fn dangling_volumes() -> Vec<String> {
    let output = Command::new("docker")
        .args(["volume", "ls", "-q", "--filter", "label=org.envlock.role"])
        .args(["--filter", "dangling=true"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&output.stdout)
        .split_whitespace()
        .map(str::to_string)
        .collect()
}

/// The requests a fault hit, and the last few: what a failing case needs.
fn faulted_and_last(relay: &Relay) -> String {
    let log = relay.log();
    let tail = log.len().saturating_sub(8);
    log.iter()
        .enumerate()
        .filter(|(index, logged)| logged.fault.is_some() || *index >= tail)
        .map(|(_, logged)| format!("  {logged}\n"))
        .collect()
}

/// One case against `image`: its outcome as a table row, or what went wrong.
fn run_case(case: &Case, image: &str, project: &Path) -> Result<String, String> {
    let relay = Relay::start(vec![(case.build)()]);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let mut command = envlock();
    match case.run {
        Runs::Static => command.args(["snapshot", "--image", image, "--no-exec", "-o"]),
        Runs::Probe => command.args(["snapshot", "--image", image, "-o"]),
        Runs::Layers => command.args(["snapshot", "--image", image, "--no-exec", "--layers", "-o"]),
        Runs::Golden => command
            .args(["diff", "dev.lock", image, "--report"])
            .current_dir(project),
    };
    if case.run == Runs::Golden {
        command.arg(format!("json:{}", out.display()));
    } else {
        command.arg(&out);
    }
    let stall = case.fault.contains("stall");
    command
        .env("DOCKER_HOST", relay.host())
        .env(
            "ENVLOCK_PROBE_TIMEOUT",
            if stall { PROBE_LIMIT } else { "120" },
        )
        .env(
            "ENVLOCK_ENGINE_TIMEOUT",
            if stall { STALL_LIMIT } else { "60" },
        );
    let started = std::time::Instant::now();
    let done = run(&mut command);
    let took = started.elapsed().as_secs_f64();
    let left = containers_of(image);
    clean(image);
    let fired = relay.fired(0);
    let first = done
        .stderr
        .lines()
        .find(|line| line.starts_with("error:"))
        .unwrap_or("")
        .to_string();
    let row = format!(
        "| {:?} | {} | {} | {} | {:.1} s | {} |",
        case.call,
        case.fault,
        done.code,
        first.replace('|', "\\|"),
        took,
        if left.is_empty() {
            "none".to_string()
        } else {
            format!("{left:?}")
        }
    );
    let mut wrong = Vec::new();
    if fired == 0 {
        wrong.push("the fault never fired".to_string());
    }
    if done.code != case.exit {
        wrong.push(format!("exit {} (expected {})", done.code, case.exit));
    }
    if done.stderr.contains("panicked") {
        wrong.push("a panic".into());
    }
    let lower = done.stderr.to_lowercase();
    let mut names: Vec<&str> = case.names.to_vec();
    if case.exit != 0 && !case.names.contains(&"probe") {
        names.push("engine");
    }
    for name in names {
        if !lower.contains(&name.to_lowercase()) {
            wrong.push(format!("the message does not name `{name}`"));
        }
    }
    if case.exit != 0 && out.exists() {
        wrong.push("an output was written".into());
    }
    // A removal refused every time leaves its container, named in the message.
    let refused = case.call == Call::ContainerRemove && case.fault.ends_with("always");
    if refused {
        if left.is_empty() || !left.iter().all(|id| done.stderr.contains(id.as_str())) {
            wrong.push(format!(
                "the containers left, {left:?}, are not the ones named"
            ));
        }
    } else if !left.is_empty() {
        wrong.push(format!("containers left: {left:?}"));
    }
    if wrong.is_empty() {
        Ok(row)
    } else {
        Err(format!(
            "{row}\n  {}\n  stderr:\n{}\n  requests (the faulted ones and the last 8):\n{}",
            wrong.join("; "),
            done.stderr,
            faulted_and_last(&relay)
        ))
    }
}

/// Every kind of engine call envlock makes, failing every way it can (an error status, a
/// connection cut mid-body, a body short of its framing, a stall before or during the
/// answer): each run ends with its documented exit and a message naming the call and the
/// engine, writes nothing, and leaves no container or volume. Four cases run at a time;
/// `--nocapture` prints the matrix.
#[cfg_attr(not(envlock_docker), ignore = "needs a Docker engine")]
#[test]
fn every_engine_call_failing_every_way() {
    need_engine();
    const WORKERS: usize = 4;
    let images: Vec<String> = (0..WORKERS)
        .map(|worker| private("dist-packages", &format!("matrix-{worker}")))
        .collect();
    let project = golden_project();
    let cases = matrix();
    let results = share_out(&images, &cases, |image, _, case| {
        run_case(case, image, project.path())
    });
    // The volumes first: a failed case must not hide them.
    let volumes_left = lasting_dangling_volumes();
    assert_matrix(
        "| call | fault | exit | message | took | containers left |\n|---|---|---|---|---|---|",
        results,
    );
    assert!(
        volumes_left.is_empty(),
        "envlock's volumes left: {volumes_left:?}"
    );
}

/// envlock's dangling volumes, looked at twice: a volume removed with its container can
/// show dangling for an instant, a leftover stays.
fn lasting_dangling_volumes() -> Vec<String> {
    let volumes = dangling_volumes();
    if volumes.is_empty() {
        return volumes;
    }
    std::thread::sleep(Duration::from_secs(2));
    dangling_volumes()
}

/// A fault the soak may inject, and the exit it leads to (`None`: the run's own, as if no
/// fault: the fault is absorbed).
struct Injected {
    name: &'static str,
    exec_only: bool,
    stall: bool,
    build: fn() -> Fault,
    fails: bool,
}

fn injectable() -> Vec<Injected> {
    use Call::*;
    const STAT: &[&str] = &["path=/var/lib/dpkg/status"];
    let fault = |name, exec_only, stall, fails, build| Injected {
        name,
        exec_only,
        stall,
        build,
        fails,
    };
    vec![
        fault("inspect 500", false, false, true, || {
            status(ImageInspect, &[])
        }),
        fault("create 500", false, false, true, || {
            status(ContainerCreate, &[])
        }),
        fault("site archive 500", false, false, true, || {
            status(ArchiveGet, &[SITE])
        }),
        fault("site archive reset", false, false, true, || {
            Fault::on(ArchiveGet, &[SITE], Action::ResetAfter(8 << 10))
        }),
        fault("site archive stall", false, true, true, || {
            Fault::on(ArchiveGet, &[SITE], Action::StallAfter(16 << 10))
        }),
        fault("stat stall", false, true, true, || {
            Fault::on(ArchiveHead, STAT, Action::Stall).nth(1)
        }),
        fault("history short", false, false, true, || {
            Fault::on(ImageHistory, &[], Action::Truncate(32)).nth(1)
        }),
        fault("removal 500 once", false, false, false, || {
            status(ContainerRemove, &[])
        }),
        fault("dpkg 404 once after a stat", false, false, false, || {
            Fault::on(ArchiveGet, STAT, lost_answer())
                .after_stat()
                .nth(1)
        }),
        fault("site archive reset once", false, false, false, || {
            Fault::on(ArchiveGet, &[SITE], Action::ResetAfter(8 << 10)).nth(1)
        }),
        fault("attach 500", true, false, true, || {
            status(ContainerAttach, &[])
        }),
        fault("wait stall", true, true, true, || {
            Fault::on(ContainerWait, &[], Action::Stall).nth(1)
        }),
    ]
}

/// A small deterministic generator (xorshift), seeded and printed so a run can be replayed.
struct Dice(u64);

impl Dice {
    fn roll(&mut self, sides: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % sides as u64) as usize
    }
}

/// `ENVLOCK_SOAK_RUNS` (default 40) `envlock diff` runs, four at a time, of the local
/// interpreter against four images, half static and half with the probe; one run in five (at random,
/// `ENVLOCK_SOAK_SEED` replays) has a fault injected. Each ends with its documented exit
/// (a run with no fault, or one envlock absorbs, gives the very report of a clean run), and
/// afterwards no container, volume or temporary file of envlock's remains and the probe
/// cache holds only whole answers.
#[cfg_attr(not(envlock_docker), ignore = "needs a Docker engine")]
#[test]
fn a_soak_of_diffs_with_random_faults() {
    need_engine();
    let runs: usize = std::env::var("ENVLOCK_SOAK_RUNS")
        .ok()
        .and_then(|runs| runs.parse().ok())
        .unwrap_or(40);
    let seed: u64 = std::env::var("ENVLOCK_SOAK_SEED")
        .ok()
        .and_then(|seed| seed.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                | 1
        });
    eprintln!("soak: {runs} runs, ENVLOCK_SOAK_SEED={seed}");
    let images: Vec<String> = (0..4)
        .map(|worker| private("dist-packages", &format!("soak-{worker}")))
        .collect();
    let work = tempfile::tempdir().unwrap();
    let temp = work.path().join("tmp");
    let cache = work.path().join("cache");
    std::fs::create_dir_all(&temp).unwrap();
    // The baseline is the local interpreter, whose probe answer every run takes from the
    // cache (the first writes it) while the engine side fails around it.
    let baseline = format!("python:{}", system_python().display());
    let faults = injectable();
    let mut dice = Dice(seed);
    // What each run does: whether the probe runs, and its fault.
    let plan: Vec<(bool, Option<usize>)> = (0..runs)
        .map(|index| {
            let exec = index % 2 == 1;
            let fault = (dice.roll(5) == 0).then(|| loop {
                let pick = dice.roll(faults.len());
                if exec || !faults[pick].exec_only {
                    break pick;
                }
            });
            (exec, fault)
        })
        .collect();
    let diff = |image: &str, exec: bool, relay: Option<&Relay>, stall: bool| {
        let mut command = envlock();
        command
            .arg("diff")
            .arg(&baseline)
            .arg(image)
            .args(["--format", "json"])
            .env("ENVLOCK_CACHE_DIR", &cache)
            .env("TMPDIR", &temp)
            .env(
                "ENVLOCK_ENGINE_TIMEOUT",
                if stall { STALL_LIMIT } else { "60" },
            )
            .env(
                "ENVLOCK_PROBE_TIMEOUT",
                if stall { PROBE_LIMIT } else { "120" },
            )
            .current_dir(work.path());
        if !exec {
            command.arg("--no-exec");
        }
        if let Some(relay) = relay {
            command.env("DOCKER_HOST", relay.host());
        }
        run(&mut command)
    };
    // The clean report of each image and mode, once.
    let mut clean_reports = std::collections::HashMap::new();
    for image in &images {
        for exec in [false, true] {
            let done = diff(image, exec, None, false);
            assert_eq!(done.code, 1, "a clean diff finds drift\n{}", done.stderr);
            clean_reports.insert((image.clone(), exec), done.stdout);
        }
    }
    // Each worker has an image of its own: what a run leaves is its own.
    let outcomes = share_out(&images, &plan, |image, index, &(exec, fault)| {
        let injected = fault.map(|pick| &faults[pick]);
        let relay = Relay::start(injected.map(|f| vec![(f.build)()]).unwrap_or_default());
        let done = diff(image, exec, Some(&relay), injected.is_some_and(|f| f.stall));
        let name = match injected {
            None => "none".to_string(),
            Some(f) if relay.fired(0) == 0 => {
                format!("{} (a call this run did not make)", f.name)
            }
            Some(f) => f.name.to_string(),
        };
        let fails = injected.is_some_and(|f| f.fails);
        let mut wrong = Vec::new();
        if injected.is_some() && relay.fired(0) == 0 {
            // A fault on a call this run did not make (a cached probe answer).
            if fails && done.code != 1 {
                wrong.push("exit without the fault firing".to_string());
            }
        } else if fails {
            if done.code != 2 || !done.stdout.is_empty() {
                wrong.push(format!(
                    "exit {} with a report of {} bytes",
                    done.code,
                    done.stdout.len()
                ));
            }
        } else if done.code != 1 || done.stdout != clean_reports[&(image.clone(), exec)] {
            wrong.push(format!("exit {}, a report unlike a clean run's", done.code));
        }
        if done.stderr.contains("panicked") {
            wrong.push("a panic".to_string());
        }
        let left = containers_of(image);
        if !left.is_empty() {
            clean(image);
            wrong.push(format!("containers left: {left:?}"));
        }
        let failure = (!wrong.is_empty()).then(|| {
            format!(
                "run {index} ({image}, exec {exec}, fault {name}): {}\n{}",
                wrong.join("; "),
                done.stderr
            )
        });
        (format!("{name}: exit {}", done.code), failure)
    });
    let mut tally = std::collections::BTreeMap::<String, usize>::new();
    for (outcome, _) in &outcomes {
        *tally.entry(outcome.clone()).or_default() += 1;
    }
    eprintln!("soak outcomes: {tally:#?}");
    let failures: Vec<String> = outcomes
        .into_iter()
        .filter_map(|(_, failure)| failure)
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    let volumes = lasting_dangling_volumes();
    assert!(volumes.is_empty(), "envlock's volumes left: {volumes:?}");
    let temps: Vec<_> = std::fs::read_dir(&temp)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    assert!(temps.is_empty(), "temporary files left: {temps:?}");
    let beside: Vec<_> = std::fs::read_dir(work.path())
        .unwrap()
        .flatten()
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .filter(|name| !["tmp", "cache"].contains(&name.as_str()))
        .collect();
    assert!(beside.is_empty(), "files left beside the lock: {beside:?}");
    // The probe cache: every answer whole (JSON that parses).
    let mut answers = 0;
    let mut folders = vec![cache.clone()];
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(&folder).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                folders.push(path);
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            serde_json::from_str::<serde_json::Value>(&text).unwrap_or_else(|error| {
                panic!("{} is not a whole answer: {error}", path.display())
            });
            answers += 1;
        }
    }
    assert!(answers > 0, "the probe cache is empty");
}
