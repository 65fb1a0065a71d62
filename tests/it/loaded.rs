//! What golden runs really load: traced by envlock's sitecustomize in a real venv and in real
//! images (real numpy, PyYAML and six wheels), a forking HTTP server's workers included;
//! `[policy] scope = "loaded"`; and `--run-as`.

use std::path::{Path, PathBuf};

use crate::docker::{built, containers_of, need_engine, wheel_for_image};
use crate::support::*;

/// Imports numpy only; prints twice its input, then the user's sitecustomize's MARK (0 when
/// it did not run).
const PREDICT: &str = r#"import sys
import numpy as np
import sitecustomize
x = np.array([float(v) for v in open(sys.argv[1]).read().split()])
print(" ".join(repr(float(v)) for v in (x @ np.eye(len(x))) * 2), getattr(sitecustomize, "MARK", 0))
"#;

/// A forking server: each request is served by a worker forked for it, which imports yaml
/// (the parent never does).
const SERVE: &str = r#"import json, socketserver, sys
from http.server import BaseHTTPRequestHandler

class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        import yaml
        data = yaml.safe_load(self.rfile.read(int(self.headers["Content-Length"])))
        body = json.dumps({"sum": sum(data["x"])}).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass

socketserver.ForkingTCPServer.allow_reuse_address = True
with socketserver.ForkingTCPServer(("0.0.0.0", int(sys.argv[1])), Handler) as server:
    server.serve_forever()
"#;

/// Writes a cache under its own folder (the image's root-owned `/app`), as models that
/// compile or download on first use do.
const CACHE: &str = r#"import os, sys
folder = os.path.join(os.path.dirname(os.path.abspath(__file__)), ".cache")
os.makedirs(folder, exist_ok=True)
with open(os.path.join(folder, "compiled"), "w") as handle:
    handle.write("x")
print(open(sys.argv[1]).read().strip())
"#;

/// The user's own sitecustomize, which must still run under envlock's.
const USER_SITECUSTOMIZE: &str = "MARK = 7\n";

/// The project folder: the scripts, the inputs and an envlock.toml with `cases` and `extra`.
fn project(cases: &[&str], extra: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path();
    std::fs::write(folder.join("predict.py"), PREDICT).unwrap();
    std::fs::write(folder.join("serve.py"), SERVE).unwrap();
    std::fs::write(folder.join("cache.py"), CACHE).unwrap();
    std::fs::write(folder.join("numbers.txt"), "1 2 3\n").unwrap();
    std::fs::write(folder.join("body.json"), "{\"x\": [1, 2, 3]}").unwrap();
    let mut config = String::new();
    for case in cases {
        config.push_str(match *case {
            "predict" => "[[golden]]\nname = \"predict\"\ncommand = [\"python3\", \"predict.py\", \"{input}\"]\ninput = \"numbers.txt\"\nformat = \"numbers\"\n\n",
            "isolated" => "[[golden]]\nname = \"isolated\"\ncommand = [\"python3\", \"-I\", \"predict.py\", \"{input}\"]\ninput = \"numbers.txt\"\nformat = \"numbers\"\n\n",
            "serve" => "[[golden]]\nname = \"serve\"\ncommand = [\"python3\", \"serve.py\", \"18731\"]\nhttp = { port = 18731, path = \"/\" }\ninput = \"body.json\"\ntimeout = 30\n\n",
            "cache" => "[[golden]]\nname = \"cache\"\ncommand = [\"python3\", \"cache.py\", \"{input}\"]\ninput = \"numbers.txt\"\nformat = \"numbers\"\n\n",
            other => panic!("{other}"),
        });
    }
    config.push_str(extra);
    std::fs::write(folder.join("envlock.toml"), config).unwrap();
    dir
}

const PINS: &[&str] = &["numpy==1.26.4", "PyYAML==6.0.2", "six==1.17.0"];

/// The dev venv: the pins, and the user's sitecustomize in its site-packages.
fn dev_venv() -> PathBuf {
    let python = venv(
        "loaded",
        &format!("{PINS:?} sitecustomize"),
        &[],
        |folder| {
            pip_install(folder, PINS);
            let site = folder.join("lib/python3.11/site-packages");
            std::fs::write(site.join("sitecustomize.py"), USER_SITECUSTOMIZE).unwrap();
        },
    );
    // `python3` in the cases is the venv's (its folder goes first on PATH).
    python
}

/// An image with `pins` installed from their wheels, the scripts in a root-owned `/app`, and
/// the user's sitecustomize on the image's own PYTHONPATH.
fn image(name: &str, pins: &[&str]) -> String {
    let wheels: Vec<PathBuf> = pins.iter().map(|pin| wheel_for_image(pin)).collect();
    let names: Vec<String> = wheels
        .iter()
        .map(|wheel| wheel.file_name().unwrap().to_str().unwrap().to_string())
        .collect();
    let scripts = tempfile::tempdir().unwrap();
    for (file, text) in [
        ("predict.py", PREDICT),
        ("serve.py", SERVE),
        ("cache.py", CACHE),
        ("sitecustomize.py", USER_SITECUSTOMIZE),
    ] {
        std::fs::write(scripts.path().join(file), text).unwrap();
    }
    // Its own image per test (a label), so no test sees another's containers.
    let mut dockerfile = format!("FROM {{base}}\nLABEL org.envlock.test={name}\n");
    let installed: Vec<String> = names.iter().map(|name| format!("/tmp/{name}")).collect();
    for name in &names {
        dockerfile.push_str(&format!("COPY {name} /tmp/\n"));
    }
    dockerfile.push_str(&format!(
        "RUN python3 -m pip install -q --no-index --no-deps --break-system-packages {} && rm {}\n\
         COPY sitecustomize.py /opt/custom/\nENV PYTHONPATH=/opt/custom\nWORKDIR /app\n\
         COPY predict.py serve.py cache.py /app/\nCMD [\"python3\", \"serve.py\", \"18731\"]\n",
        installed.join(" "),
        installed.join(" ")
    ));
    let script_paths: Vec<(String, PathBuf)> =
        ["predict.py", "serve.py", "cache.py", "sitecustomize.py"]
            .iter()
            .map(|file| (file.to_string(), scripts.path().join(file)))
            .collect();
    let mut files: Vec<(&str, &Path)> = names
        .iter()
        .map(String::as_str)
        .zip(wheels.iter().map(PathBuf::as_path))
        .collect();
    files.extend(
        script_paths
            .iter()
            .map(|(name, path)| (name.as_str(), path.as_path())),
    );
    built(name, &dockerfile, &files)
}

fn snapshot_dev(folder: &Path) -> (PathBuf, String) {
    let lock = folder.join("dev.lock");
    let made = run(envlock()
        .args(["snapshot", "--python"])
        .arg(dev_venv())
        .arg("-o")
        .arg(&lock)
        .current_dir(folder));
    assert_eq!(made.code, 0, "{}", made.stderr);
    let text = std::fs::read_to_string(&lock).unwrap();
    (lock, text)
}

fn diff(folder: &Path, lock: &Path, target: &str, args: &[&str]) -> (Run, serde_json::Value) {
    let done = run(envlock()
        .args(["diff", "--format", "json"])
        .arg(lock)
        .arg(target)
        .args(args)
        .current_dir(folder));
    let json = serde_json::from_str(&done.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}\n{}", done.stdout, done.stderr));
    (done, json)
}

fn strings(value: &serde_json::Value) -> Vec<String> {
    value
        .as_array()
        .unwrap_or_else(|| panic!("not a list: {value}"))
        .iter()
        .map(|item| item.as_str().unwrap().to_string())
        .collect()
}

/// The report's first finding that `test` picks.
fn finding_where(
    json: &serde_json::Value,
    test: impl Fn(&serde_json::Value) -> bool,
) -> &serde_json::Value {
    json["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| test(f))
        .unwrap_or_else(|| panic!("{json:#}"))
}

/// The report's `package-version` finding about `subject`.
fn version_finding<'a>(json: &'a serde_json::Value, subject: &str) -> &'a serde_json::Value {
    finding_where(json, |f| {
        f["code"] == "package-version" && f["subject"] == subject
    })
}

fn case<'a>(json: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    json["golden"]
        .as_array()
        .unwrap()
        .iter()
        .find(|case| case["name"] == name)
        .unwrap_or_else(|| panic!("no case {name}: {json:#}"))
}

/// The predictor loads numpy (and what numpy imports: nothing else installed) and numpy's
/// vendored OpenBLAS, never PyYAML or six; the forking server's workers load PyYAML; the
/// user's sitecustomize runs; on both sides.
#[cfg_attr(not(envlock_docker), ignore = "needs a Docker engine")]
#[test]
fn the_loaded_set_of_a_command_and_a_forking_server_on_both_sides() {
    let dir = project(&["predict", "serve"], "");
    let (lock, text) = snapshot_dev(dir.path());
    let recorded = envlock::lock::read_lock(&lock).unwrap();
    let predict = &recorded.golden[0];
    assert!(
        predict.output.trim().ends_with(" 7"),
        "the user's sitecustomize ran: {}",
        predict.output
    );
    let loaded = predict.loaded.as_ref().expect("traced");
    assert_eq!(loaded.distributions, ["numpy"], "{text}");
    assert!(
        loaded
            .libraries
            .iter()
            .any(|path| path.contains("numpy.libs/libopenblas")),
        "{:?}",
        loaded.libraries
    );
    let openblas = recorded
        .numerics
        .libraries
        .iter()
        .find(|library| library.family == "openblas")
        .expect("numpy's OpenBLAS");
    assert!(openblas.loaded, "the traced run mapped it: {text}");
    let serve = recorded.golden[1].loaded.as_ref().unwrap();
    assert!(
        serve.distributions.contains(&"pyyaml".to_string()),
        "a worker imported yaml: {serve:?}"
    );
    assert!(!serve.distributions.contains(&"six".to_string()));

    need_engine();
    let image = image("loaded", PINS);
    let (done, json) = diff(dir.path(), &lock, &image, &[]);
    for name in ["predict", "serve"] {
        assert_eq!(
            case(&json, name)["status"],
            "pass",
            "{}\n{json:#}",
            done.stderr
        );
    }
    let target = &case(&json, "predict")["loaded"];
    assert_eq!(strings(&target["distributions"]), ["numpy"], "{json:#}");
    assert!(strings(&target["libraries"])
        .iter()
        .any(|path| path.contains("numpy.libs/libopenblas")));
    assert!(
        strings(&case(&json, "serve")["loaded"]["distributions"]).contains(&"pyyaml".to_string())
    );
    let human = run(envlock()
        .arg("diff")
        .arg(&lock)
        .arg(&image)
        .current_dir(dir.path()));
    assert!(
        human.stdout.contains("loaded 1 distribution (numpy)"),
        "{}",
        human.stdout
    );
    assert!(containers_of(&image).is_empty(), "containers left behind");
}

/// `python -I` skips sitecustomize: the loaded set is unknown, with the reason, never empty;
/// and `scope = "loaded"` then says it did not apply.
#[test]
fn a_run_that_skips_site_customisation_is_unknown() {
    let dir = project(&["isolated"], "[policy]\nscope = \"loaded\"\n");
    let (lock, _) = snapshot_dev(dir.path());
    let recorded = envlock::lock::read_lock(&lock).unwrap();
    let loaded = recorded.golden[0].loaded.as_ref().unwrap();
    assert!(
        loaded.unknown.as_deref().unwrap().contains("`-I`"),
        "{loaded:?}"
    );
    assert!(loaded.distributions.is_empty());
    let target = format!("python:{}", dev_venv().display());
    let (done, json) = diff(dir.path(), &lock, &target, &[]);
    let why = case(&json, "isolated")["loaded"]["unknown"].as_str();
    assert!(why.is_some_and(|why| why.contains("`-I`")), "{json:#}");
    assert!(done.stderr.contains("did not apply"), "{}", done.stderr);
}

/// An image that drifts only in a package no case imports fails under `scope = "all"` and
/// passes under `scope = "loaded"` (that finding info, `"loaded": false`); a numpy drift still
/// fails under `loaded`.
#[cfg_attr(not(envlock_docker), ignore = "needs a Docker engine")]
#[test]
fn scope_loaded_gates_on_what_the_golden_cases_loaded() {
    need_engine();
    let all = project(&["predict"], "");
    let loaded = project(&["predict"], "[policy]\nscope = \"loaded\"\n");
    let (all_lock, _) = snapshot_dev(all.path());
    let (loaded_lock, _) = snapshot_dev(loaded.path());
    let six = image(
        "loaded-six",
        &["numpy==1.26.4", "PyYAML==6.0.2", "six==1.16.0"],
    );

    let (done, json) = diff(all.path(), &all_lock, &six, &[]);
    assert_eq!(done.code, 1, "{json:#}");
    let finding = version_finding(&json, "six");
    assert_eq!(finding["severity"], "error");
    assert_eq!(finding["loaded"], false);
    assert!(
        json["summary"]["not-loaded"].as_u64().unwrap() >= 1,
        "{json:#}"
    );
    let human = run(envlock()
        .arg("diff")
        .arg(&all_lock)
        .arg(&six)
        .current_dir(all.path()));
    assert!(
        human
            .stdout
            .contains("no golden case loaded (`[policy] scope = \"loaded\"`"),
        "{}",
        human.stdout
    );

    let (done, json) = diff(loaded.path(), &loaded_lock, &six, &[]);
    assert_eq!(done.code, 0, "{json:#}\n{}", done.stderr);
    let mut scoped = 0;
    for finding in json["findings"].as_array().unwrap() {
        if finding["code"].as_str().unwrap().starts_with("package-") {
            // numpy's (another source, a warning) was loaded and keeps its severity.
            if finding["loaded"] == false {
                assert_eq!(finding["severity"], "info", "{finding}");
                scoped += 1;
            } else {
                assert_eq!(finding["loaded"], true, "{finding}");
                assert_ne!(finding["severity"], "error", "{finding}");
            }
        }
    }
    assert!(scoped >= 2, "six and the installer tooling: {json:#}");
    let six_finding = finding_where(&json, |f| f["subject"] == "six");
    assert_eq!(six_finding["severity"], "info", "{six_finding}");
    // The command case ran beside the probe: the diff made no container of its own for it.
    let now = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
    };
    let since = now() - 1;
    let (again, _) = diff(loaded.path(), &loaded_lock, &six, &[]);
    assert_eq!(again.code, 0);
    let events = std::process::Command::new("docker")
        .args(["events", "--since", &since.to_string(), "--until"])
        .arg((now() + 1).to_string())
        .args(["--filter", "type=container", "--filter", "event=create"])
        .args([
            "--format",
            "{{index .Actor.Attributes \"org.envlock.role\"}} {{.Actor.Attributes.image}}",
        ])
        .output()
        .unwrap();
    let events = String::from_utf8_lossy(&events.stdout).into_owned();
    // envlock creates its containers from the image's id.
    let id = std::process::Command::new("docker")
        .args(["image", "inspect", "--format", "{{.Id}}", &six])
        .output()
        .unwrap();
    let id = String::from_utf8_lossy(&id.stdout).trim().to_string();
    let roles: Vec<&str> = events
        .lines()
        .filter(|line| line.ends_with(&id))
        .map(|line| line.split(' ').next().unwrap_or_default())
        .collect();
    assert!(roles.contains(&"probe"), "{events}");
    assert!(!roles.contains(&"golden"), "a container per case: {events}");

    let numpy = image(
        "loaded-numpy",
        &["numpy==1.25.2", "PyYAML==6.0.2", "six==1.17.0"],
    );
    let (done, json) = diff(loaded.path(), &loaded_lock, &numpy, &[]);
    assert_eq!(done.code, 1, "{json:#}");
    let finding = version_finding(&json, "numpy");
    assert_eq!(finding["severity"], "error");
    assert_eq!(finding["loaded"], true);
    assert!(containers_of(&numpy).is_empty() && containers_of(&six).is_empty());
}

/// A model that writes a cache under the image's root-owned WORKDIR passes as the image's
/// USER and fails as OpenShift runs it; the identity is in the report and the lock.
#[cfg_attr(not(envlock_docker), ignore = "needs a Docker engine")]
#[test]
fn run_as_openshift_finds_a_root_owned_workdir() {
    need_engine();
    let dir = project(&["cache", "predict"], "");
    let (lock, _) = snapshot_dev(dir.path());
    let image = image("loaded-run-as", PINS);
    let (done, json) = diff(dir.path(), &lock, &image, &[]);
    assert_eq!(
        case(&json, "cache")["status"],
        "pass",
        "{json:#}\n{}",
        done.stderr
    );
    assert!(case(&json, "cache").get("run-as").is_none());

    let (done, json) = diff(dir.path(), &lock, &image, &["--run-as", "openshift"]);
    assert_eq!(done.code, 1, "{json:#}");
    let error = finding_where(&json, |f| f["code"] == "golden-error");
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("Permission denied"),
        "{error}"
    );
    let identity = case(&json, "cache")["run-as"].as_str().unwrap().to_string();
    let (uid, gid) = identity.split_once(':').unwrap();
    assert!(uid.parse::<u64>().unwrap() >= 1_000_000_000, "{identity}");
    assert_eq!(gid, "0");
    // As a UID that owns nothing there, the tracer still writes: what predict loaded is known.
    let predict = case(&json, "predict");
    assert_eq!(predict["status"], "pass", "{json:#}");
    assert_eq!(
        strings(&predict["loaded"]["distributions"]),
        ["numpy"],
        "{json:#}"
    );

    // `[image] run-as` does the same, recorded in an image snapshot's lock; a bad value is
    // exit 2 naming it.
    std::fs::write(
        dir.path().join("envlock.toml"),
        format!(
            "{}\n[image]\nrun-as = \"0:0\"\n",
            std::fs::read_to_string(dir.path().join("envlock.toml")).unwrap()
        ),
    )
    .unwrap();
    let image_lock = dir.path().join("image.lock");
    let made = run(envlock()
        .args(["snapshot", "--image", &image, "-o"])
        .arg(&image_lock)
        .current_dir(dir.path()));
    assert_eq!(made.code, 0, "{}", made.stderr);
    let recorded = envlock::lock::read_lock(&image_lock).unwrap();
    assert_eq!(recorded.golden[0].run_as.as_deref(), Some("0:0"));
    assert!(recorded.golden[0]
        .loaded
        .as_ref()
        .unwrap()
        .unknown
        .is_none());
    let text = std::fs::read_to_string(dir.path().join("envlock.toml")).unwrap();
    std::fs::write(
        dir.path().join("envlock.toml"),
        text.replace("\"0:0\"", "\"root\""),
    )
    .unwrap();
    let refused = run(envlock()
        .args(["diff"])
        .arg(&lock)
        .arg(&image)
        .current_dir(dir.path()));
    assert_eq!(refused.code, 2, "{}", refused.stderr);
    assert!(
        refused.stderr.contains("run-as") && refused.stderr.contains("root"),
        "{}",
        refused.stderr
    );
    assert!(containers_of(&image).is_empty(), "containers left behind");
}
