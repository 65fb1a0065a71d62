//! Images where they live: a real registry (Debian's `docker-registry`), `docker save`
//! archives, and OCI layouts written by `skopeo`, each captured from its layers and checked
//! against the engine's own static capture of the same image; layer attribution; golden
//! cases off the engine; a remote engine; and the bad inputs of each.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::docker::{fixture, model_image, need_engine, private_copy};
use crate::registry::{free_port, Registry};
use crate::support::*;

/// `snapshot --image SOURCE --model model`, in a folder without envlock.toml.
fn capture(source: &str, extra: &[&str]) -> toml::Table {
    let dir = tempfile::tempdir().unwrap();
    snapshot(
        envlock()
            .args(["snapshot", "--image", source, "--model", "model"])
            .args(extra)
            .current_dir(dir.path()),
    )
}

fn array<'a>(lock: &'a toml::Table, key: &str) -> Vec<&'a toml::Table> {
    lock.get(key)
        .and_then(|value| value.as_array())
        .map(|items| items.iter().map(|item| item.as_table().unwrap()).collect())
        .unwrap_or_default()
}

/// `name -> value of key` over an array of tables.
fn by_name(lock: &toml::Table, table: &str, key: &str) -> BTreeMap<String, String> {
    array(lock, table)
        .into_iter()
        .map(|item| {
            (
                item["name"].as_str().unwrap().to_string(),
                item.get(key).map(ToString::to_string).unwrap_or_default(),
            )
        })
        .collect()
}

fn models(lock: &toml::Table) -> Vec<(String, String)> {
    array(lock, "models")
        .into_iter()
        .map(|m| {
            (
                m["path"].as_str().unwrap().to_string(),
                m["sha256"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// The `layer` of each item of `table`, by name (or path for models).
fn layers_of(lock: &toml::Table, table: &str) -> BTreeMap<String, i64> {
    let key = if table == "models" { "path" } else { "name" };
    array(lock, table)
        .into_iter()
        .map(|item| {
            let layer = item
                .get("layer")
                .and_then(toml::Value::as_integer)
                .unwrap_or_else(|| panic!("{table} `{}` has no layer", item[key]));
            (item[key].as_str().unwrap().to_string(), layer)
        })
        .collect()
}

/// The `created-by` of layer `index` of a lock.
fn step(lock: &toml::Table, index: i64) -> String {
    let layers = lock["image"]["layers"].as_array().unwrap();
    let layer = layers[usize::try_from(index).unwrap()].as_table().unwrap();
    assert_eq!(layer["index"].as_integer(), Some(index));
    layer
        .get("created-by")
        .and_then(|step| step.as_str())
        .unwrap_or_default()
        .to_string()
}

#[cfg_attr(not(envlock_docker), ignore = "needs a Docker engine")]
#[test]
fn registries_archives_and_layouts_equal_the_engines_own_capture() {
    need_engine();
    let image = fixture("dist-packages");
    let registry = Registry::start(None);
    let dir = tempfile::tempdir().unwrap();
    let archive = crate::docker::saved(&image, dir.path());
    let pushed = registry.push_archive(&archive, "dist-packages:v1");
    let layout = dir.path().join("layout");
    let oci_archive = dir.path().join("layout.tar");
    for target in [
        format!("oci:{}:v1", layout.display()),
        format!("oci-archive:{}:v1", oci_archive.display()),
    ] {
        crate::docker::skopeo_copy(&archive, &target);
    }
    let engine_lock = capture(&image, &["--no-exec"]);
    let truth = crate::docker::importlib_in_image(&image);
    assert_eq!(lock_packages(&engine_lock), truth);
    for source in [
        format!("registry:{pushed}"),
        format!("docker-archive:{}", archive.display()),
        format!("oci-dir:{}", layout.display()),
        format!("oci-archive:{}", oci_archive.display()),
    ] {
        let lock = capture(&source, &[]);
        assert_eq!(lock_packages(&lock), truth, "{source}");
        assert_eq!(models(&lock), models(&engine_lock), "{source}");
        assert_eq!(
            by_name(&lock, "system-packages", "version"),
            by_name(&engine_lock, "system-packages", "version"),
            "{source}"
        );
        assert_eq!(lock["python"]["version"], engine_lock["python"]["version"]);
        assert_eq!(lock["platform"], engine_lock["platform"], "{source}");
        // numpy's vendored OpenBLAS, found as the layers stream past.
        assert_eq!(lock["numerics"], engine_lock["numerics"], "{source}");
        assert_eq!(lock["env"], engine_lock["env"], "{source}");
        assert_eq!(lock["image"]["capture"].as_str(), Some("static"));
        assert_eq!(lock["image"]["workdir"], engine_lock["image"]["workdir"]);
        assert_eq!(
            lock["image"]["layers"].as_array().unwrap().len(),
            engine_lock["image"]["layers"].as_array().unwrap().len()
        );
        // Secrets of the config stay out, as from the engine.
        assert!(!toml::to_string(&lock).unwrap().contains("not-for-the-lock"));
    }
}

#[cfg_attr(not(envlock_docker), ignore = "needs a Docker engine")]
#[test]
fn each_package_and_model_names_the_layer_that_wrote_it() {
    need_engine();
    let image = fixture("dist-packages");
    let registry = Registry::start(None);
    let pushed = registry.push(&image, "attributed:v1");
    let lock = capture(&format!("registry:{pushed}"), &[]);
    let packages = layers_of(&lock, "packages");
    assert!(
        step(&lock, packages["numpy"]).contains("pip install"),
        "{lock:#?}"
    );
    assert!(step(&lock, packages["pyyaml"]).contains("pip install"));
    // Debian's own python3 packages came with the base.
    let debian = array(&lock, "packages")
        .into_iter()
        .find(|p| p["location"].as_str() == Some("/usr/lib/python3/dist-packages"))
        .expect("a Debian package");
    assert_eq!(debian["layer"].as_integer(), Some(0));
    let model = layers_of(&lock, "models")["model"];
    assert!(
        step(&lock, model).contains("COPY"),
        "{}",
        step(&lock, model)
    );
    assert!(model > packages["numpy"]);
    let system = layers_of(&lock, "system-packages");
    assert_eq!(system["libc6"], 0);
    // The engine's image export gives the same attribution (`--layers`).
    let from_engine = capture(&image, &["--layers"]);
    for table in ["packages", "models", "system-packages"] {
        assert_eq!(
            layers_of(&from_engine, table),
            layers_of(&lock, table),
            "{table}"
        );
    }
    assert_eq!(from_engine["image"]["capture"].as_str(), Some("exec"));
    assert_eq!(from_engine["image"]["layers"], lock["image"]["layers"]);
    // Without it, the engine's lock lists the layers but attributes nothing.
    let plain = capture(&image, &[]);
    assert!(array(&plain, "packages")
        .iter()
        .all(|p| p.get("layer").is_none()));
}

#[cfg_attr(not(envlock_docker), ignore = "needs a Docker engine")]
#[test]
fn a_diff_of_two_tags_names_layers_and_fetches_shared_blobs_once() {
    need_engine();
    let registry = Registry::start(None);
    let a = registry.push(&fixture("diff-a"), "ml:a");
    let b = registry.push(&fixture("diff-b"), "ml:b");
    registry.clear_log();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("envlock.toml"), "models = [\"model\"]\n").unwrap();
    let (a, b) = (format!("registry:{a}"), format!("registry:{b}"));
    let diff = |format: &str| {
        run(envlock()
            .args(["diff", &a, &b, "--format", format])
            .current_dir(dir.path()))
    };
    let json = diff("json");
    assert_eq!(json.code, 1, "{}", json.stderr);
    let gets = registry.blob_gets();
    let unique: BTreeSet<&String> = gets.iter().collect();
    assert_eq!(
        gets.len(),
        unique.len(),
        "a blob was fetched twice: {gets:#?}"
    );
    let report: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    let reports = crate::schemas::schema("envlock.report.schema.json");
    crate::schemas::assert_valid(&reports, &report, "a report with layers");
    let findings = report["findings"].as_array().unwrap();
    let finding = |code: &str, subject: &str| {
        findings
            .iter()
            .find(|f| f["code"] == code && f["subject"] == subject)
            .unwrap_or_else(|| panic!("no {code} {subject}: {findings:#?}"))
    };
    let version = finding("package-version", "typing-extensions");
    assert!(version["layer"]["created-by"]
        .as_str()
        .unwrap()
        .contains("pip install"));
    assert!(version["layer"]["digest"]
        .as_str()
        .unwrap()
        .starts_with("sha256:"));
    let model = finding("model-hash", "model");
    assert!(model["layer"]["created-by"]
        .as_str()
        .unwrap()
        .contains("COPY"));
    // Gone from the target: no layer of the target wrote it.
    assert!(finding("package-missing", "six").get("layer").is_none());
    let human = diff("human");
    let line = human
        .stdout
        .lines()
        .find(|line| line.contains("typing-extensions"))
        .unwrap();
    assert!(
        line.contains("(layer ") && line.contains("RUN python3 -m pip install"),
        "{line}"
    );
    // The layers that introduced findings, each with its step.
    let by_layer = human.stdout.split("by layer of the target").nth(1).unwrap();
    assert!(
        by_layer.contains("package-version typing-extensions"),
        "{by_layer}"
    );
    let markdown = diff("markdown");
    assert!(markdown.stdout.contains("(layer "), "{}", markdown.stdout);
}

/// The salary model's image (a copy for `test`), and a lock of it with its golden case
/// recorded in the engine.
fn salary_lock(dir: &Path, test: &str) -> (String, PathBuf) {
    // A copy of its own: other tests run the clean image while these look for leftovers.
    let image = private_copy(&model_image("salary", "clean", |_| {}), test);
    let lock = dir.join("image.lock");
    let made = run(envlock()
        .args(["snapshot", "--image", &image, "-o"])
        .arg(&lock)
        .current_dir(root().join("fixtures/models/salary")));
    assert_eq!(made.code, 0, "{}", made.stderr);
    (image, lock)
}

#[cfg_attr(not(envlock_docker), ignore = "needs a Docker engine")]
#[test]
fn golden_cases_off_the_engine_are_skipped_plainly_and_run_after_pull() {
    need_engine();
    let dir = tempfile::tempdir().unwrap();
    let (image, lock) = salary_lock(dir.path(), "off-engine");
    let registry = Registry::start(None);
    let pushed = registry.push(&image, "salary:v1");
    let diff = |extra: &[&str]| {
        let run = run(envlock()
            .arg("diff")
            .arg(&lock)
            .arg(format!("registry:{pushed}"))
            .args(["--format", "json"])
            .args(extra)
            .current_dir(root().join("fixtures/models/salary")));
        let report: serde_json::Value =
            serde_json::from_str(&run.stdout).unwrap_or_else(|_| panic!("{}", run.stderr));
        (run.code, report)
    };
    let (code, report) = diff(&[]);
    assert_eq!(code, 0, "{report:#}");
    let skipped: Vec<&serde_json::Value> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["code"] == "golden-skipped")
        .collect();
    assert_eq!(skipped.len(), 1, "{report:#}");
    assert_eq!(skipped[0]["severity"], "info");
    assert_eq!(skipped[0]["subject"], "salary-by-years");
    assert!(skipped[0]["message"].as_str().unwrap().contains("--pull"));
    assert_eq!(report["golden"].as_array().map_or(0, Vec::len), 0);
    // The gate can insist on them.
    let (code, _) = diff(&["--fail-on", "info"]);
    assert_eq!(code, 1);
    // Pulled into the engine, the case runs there and passes.
    let (code, report) = diff(&["--pull"]);
    let _ = Command::new("docker").args(["rmi", &pushed]).output();
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(report["golden"][0]["status"], "pass", "{report:#}");
    assert!(!report.to_string().contains("golden-skipped"));
}

#[cfg_attr(not(envlock_docker), ignore = "needs a Docker engine")]
#[test]
fn a_remote_engine_gets_golden_inputs_through_the_api() {
    need_engine();
    let dir = tempfile::tempdir().unwrap();
    let (image, lock) = salary_lock(dir.path(), "remote-engine");
    // The engine is reached over TCP, as a remote one is.
    let port = free_port();
    let mut relay = Command::new(crate::support::tool("socat"))
        .arg(format!("TCP-LISTEN:{port},bind=127.0.0.1,reuseaddr,fork"))
        .arg("UNIX-CONNECT:/var/run/docker.sock")
        .spawn()
        .expect("socat starts");
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    // envlock runs in a mount namespace of its own whose temp folder the engine cannot
    // see: a bind mount of a host path would reach an empty folder on the engine's side.
    let private = dir.path().join("private");
    std::fs::create_dir(&private).unwrap();
    let script = format!(
        "mount -t tmpfs envlock-private '{private}' && cp '{lock}' '{private}/image.lock' \
         && TMPDIR='{private}' exec \"$0\" diff '{private}/image.lock' '{image}' --format json",
        private = private.display(),
        lock = lock.display()
    );
    let run = run(Command::new(crate::support::tool("unshare"))
        .args(["--mount", "--propagation", "private", "sh", "-c", &script])
        .arg(env!("CARGO_BIN_EXE_envlock"))
        .env("DOCKER_HOST", format!("tcp://127.0.0.1:{port}"))
        .env("ENVLOCK_CACHE_DIR", cache_root().join("interpreter-cache"))
        .current_dir(root().join("fixtures/models/salary")));
    let _ = relay.kill();
    let _ = relay.wait();
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let report: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(report["golden"][0]["status"], "pass", "{report:#}");
    assert!(crate::docker::containers_of(&image).is_empty());
}

#[cfg_attr(not(envlock_docker), ignore = "needs a Docker engine")]
#[test]
fn registry_credentials_come_from_the_docker_config() {
    need_engine();
    let registry = Registry::start(Some(("model-team", "s3cret")));
    let pushed = registry.push(&fixture("no-shell"), "private:v1");
    let source = format!("registry:{pushed}");
    let attempt = |config: &Path| {
        run(envlock()
            .args(["snapshot", "--image", &source])
            .env("DOCKER_CONFIG", config))
    };
    let good = registry.docker_config("model-team", "s3cret");
    let captured = attempt(good.path());
    assert_eq!(captured.code, 0, "{}", captured.stderr);
    assert!(captured.stdout.contains("[[packages]]"));
    for config in [
        registry.docker_config("model-team", "wrong"),
        tempfile::tempdir().unwrap(),
    ] {
        let refused = attempt(config.path());
        assert_eq!(refused.code, 2, "{}", refused.stderr);
        assert!(
            refused.stderr.contains("refused access"),
            "{}",
            refused.stderr
        );
        assert!(
            refused.stderr.contains("docker login"),
            "{}",
            refused.stderr
        );
        assert!(refused.stdout.is_empty());
    }
}

/// A tar layer of `(path, kind)` entries, written by hand so that hostile paths survive.
enum Entry<'a> {
    File(&'a [u8]),
    Folder,
    Link(&'a str),
}

fn layer(entries: &[(&str, Entry)]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for (path, entry) in entries {
        let mut header = tar::Header::new_gnu();
        let name = path.as_bytes();
        header.as_gnu_mut().unwrap().name[..name.len()].copy_from_slice(name);
        header.set_mode(0o644);
        let data: &[u8] = match entry {
            Entry::File(data) => {
                header.set_entry_type(tar::EntryType::Regular);
                data
            }
            Entry::Folder => {
                header.set_entry_type(tar::EntryType::Directory);
                &[]
            }
            Entry::Link(target) => {
                header.set_entry_type(tar::EntryType::Symlink);
                header.set_link_name(target).unwrap();
                &[]
            }
        };
        header.set_size(data.len() as u64);
        header.set_cksum();
        builder.append(&header, data).unwrap();
    }
    builder.into_inner().unwrap()
}

fn digest(bytes: &[u8]) -> String {
    crate::support::sha256_of(bytes)
}

/// Writes an OCI layout of `layers` (plain tars) to `folder`, for linux/amd64, whose
/// index says the image is for `platforms`.
fn layout(folder: &Path, layers: &[Vec<u8>], platforms: &[&str]) {
    let blobs = folder.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).unwrap();
    let put = |bytes: &[u8]| {
        let digest = digest(bytes);
        std::fs::write(blobs.join(&digest[7..]), bytes).unwrap();
        serde_json::json!({"digest": digest, "size": bytes.len()})
    };
    let diff_ids: Vec<String> = layers.iter().map(|layer| digest(layer)).collect();
    let history: Vec<serde_json::Value> = (0..layers.len())
        .map(|i| serde_json::json!({"created_by": format!("RUN step {i} # buildkit")}))
        .collect();
    let config = serde_json::json!({
        "architecture": "amd64", "os": "linux",
        "config": {"WorkingDir": "/app", "Env": ["PATH=/usr/bin:/bin"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": history,
    });
    let mut config_descriptor = put(config.to_string().as_bytes());
    config_descriptor["mediaType"] = "application/vnd.oci.image.config.v1+json".into();
    let layer_descriptors: Vec<serde_json::Value> = layers
        .iter()
        .map(|layer| {
            let mut descriptor = put(layer);
            descriptor["mediaType"] = "application/vnd.oci.image.layer.v1.tar".into();
            descriptor
        })
        .collect();
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": config_descriptor,
        "layers": layer_descriptors,
    });
    let manifest_descriptor = put(manifest.to_string().as_bytes());
    let manifests: Vec<serde_json::Value> = platforms
        .iter()
        .map(|platform| {
            let (os, arch) = platform.split_once('/').unwrap();
            let mut entry = manifest_descriptor.clone();
            entry["mediaType"] = "application/vnd.oci.image.manifest.v1+json".into();
            entry["platform"] = serde_json::json!({"os": os, "architecture": arch});
            entry
        })
        .collect();
    let index = serde_json::json!({"schemaVersion": 2, "manifests": manifests});
    std::fs::write(folder.join("index.json"), index.to_string()).unwrap();
    std::fs::write(
        folder.join("oci-layout"),
        "{\"imageLayoutVersion\": \"1.0.0\"}",
    )
    .unwrap();
}

/// This machine's platform, as an index names it.
fn host_platform() -> &'static str {
    match std::env::consts::ARCH {
        "aarch64" => "linux/arm64",
        _ => "linux/amd64",
    }
}

#[test]
fn symlinks_and_whiteouts_resolve_inside_the_image() {
    let dir = tempfile::tempdir().unwrap();
    let base = layer(&[
        ("etc/", Entry::Folder),
        ("etc/os-release", Entry::File(b"ID=test\nVERSION_ID=1\n")),
        ("data/weights.bin", Entry::File(b"the image's weights")),
        ("data/old.bin", Entry::File(b"deleted above")),
        ("data/cache/x", Entry::File(b"emptied above")),
        ("app/", Entry::Folder),
        // Absolute, and climbing past the root: both resolve inside the image.
        ("app/model", Entry::Link("/data")),
        ("app/escape", Entry::Link("../../../../etc/hostname")),
    ]);
    let top = layer(&[
        ("data/.wh.old.bin", Entry::File(b"")),
        ("data/cache/.wh..wh..opq", Entry::File(b"")),
        ("data/cache/y", Entry::File(b"new")),
    ]);
    let folder = dir.path().join("layout");
    layout(&folder, &[base, top], &[host_platform()]);
    let source = format!("oci-dir:{}", folder.display());
    let lock = capture(&source, &[]);
    let model = array(&lock, "models")[0];
    let files: BTreeMap<String, String> = model["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            let f = f.as_table().unwrap();
            (
                f["path"].as_str().unwrap().to_string(),
                f["sha256"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        files.keys().map(String::as_str).collect::<Vec<_>>(),
        ["cache/y", "weights.bin"]
    );
    assert_eq!(files["weights.bin"], digest(b"the image's weights"));
    assert_eq!(model["layer"].as_integer(), Some(1));
    assert_eq!(lock["platform"]["os-id"].as_str(), Some("test"));
    // `/etc/hostname` exists on this machine, not in the image: it is never read.
    assert!(Path::new("/etc/hostname").exists());
    let escaped = run(envlock()
        .args(["snapshot", "--image", &source, "--model", "escape"])
        .current_dir(dir.path()));
    assert_eq!(escaped.code, 2, "{}", escaped.stdout);
    assert!(
        escaped.stderr.contains("not found in image"),
        "{}",
        escaped.stderr
    );
}

/// Runs `snapshot --image SOURCE -o FILE` and insists on exit 2 with a message that names
/// the source and `expected`, a hint, and no lock.
fn refused(source: &str, expected: &str, env: &[(&str, &str)]) {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.lock");
    let run = run(envlock()
        .args(["snapshot", "--image", source, "-o"])
        .arg(&out)
        .envs(env.iter().copied())
        .current_dir(dir.path()));
    assert_eq!(run.code, 2, "{source}: {}", run.stderr);
    assert!(
        run.stderr.contains(&format!("`{source}`")),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains(expected), "{source}: {}", run.stderr);
    assert!(run.stderr.contains("hint: "), "{}", run.stderr);
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
    assert!(!out.exists(), "{source} left a lock");
}

#[test]
fn bad_sources_exit_2_naming_the_source_and_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    // A layer that climbs out of the image.
    let hostile = dir.path().join("hostile");
    layout(
        &hostile,
        &[layer(&[("../../etc/evil", Entry::File(b"x"))])],
        &[host_platform()],
    );
    refused(
        &format!("oci-dir:{}", hostile.display()),
        "climbs out of the image",
        &[],
    );
    // An index without this machine's platform, and a platform it lacks.
    let other = dir.path().join("other-platform");
    let os_release = layer(&[("etc/os-release", Entry::File(b"ID=x\n"))]);
    layout(&other, &[os_release], &["linux/s390x", "linux/ppc64le"]);
    let source = format!("oci-dir:{}", other.display());
    refused(&source, "has linux/s390x, linux/ppc64le", &[]);
    // The config of the one picked says amd64: refused too.
    let picked = |platform: &str| {
        let run = run(envlock()
            .args(["snapshot", "--image", &source, "--platform", platform])
            .current_dir(dir.path()));
        (run.code, run.stderr)
    };
    let (code, stderr) = picked("linux/ppc64le");
    assert_eq!(code, 2);
    assert!(
        stderr.contains("it is for linux/amd64, not for linux/ppc64le"),
        "{stderr}"
    );
    let (code, stderr) = picked("ppc64le");
    assert_eq!(code, 2);
    assert!(stderr.contains("is not OS/ARCH"), "{stderr}");
    // A blob whose bytes changed after it was written.
    let corrupt = dir.path().join("corrupt");
    let body = layer(&[("etc/os-release", Entry::File(b"ID=x\n"))]);
    layout(&corrupt, std::slice::from_ref(&body), &[host_platform()]);
    let blob = corrupt.join("blobs/sha256").join(&digest(&body)[7..]);
    let mut damaged = body.clone();
    damaged[600] ^= 1;
    std::fs::write(&blob, &damaged).unwrap();
    refused(
        &format!("oci-dir:{}", corrupt.display()),
        "do not match its digest",
        &[],
    );
    // Truncated.
    std::fs::write(&blob, &body[..body.len() / 3]).unwrap();
    refused(&format!("oci-dir:{}", corrupt.display()), "is refused", &[]);
    // Files that are no image.
    let not_image = dir.path().join("not-an-image.tar");
    let mut builder = tar::Builder::new(std::fs::File::create(&not_image).unwrap());
    let mut header = tar::Header::new_gnu();
    header.set_size(5);
    header.set_cksum();
    builder
        .append_data(&mut header, "notes.txt", &b"hello"[..])
        .unwrap();
    builder.into_inner().unwrap().flush().unwrap();
    refused(
        &format!("docker-archive:{}", not_image.display()),
        "not a `docker save` archive",
        &[],
    );
    let garbage = dir.path().join("garbage.tar");
    std::fs::write(&garbage, b"not a tar at all").unwrap();
    refused(
        &format!("oci-archive:{}", garbage.display()),
        "not a tar archive",
        &[],
    );
    // A tar header that quotes terminal escapes and lines of a file: the message keeps
    // one printable line of it.
    let hostile = dir.path().join("hostile.tar");
    let mut header = vec![0u8; 512];
    let name = b"\x1b[2J\x1b]0;owned\x07root:x:0:0\n";
    header[..name.len()].copy_from_slice(name);
    let size = b"\x1b[31mnotnum";
    header[124..124 + size.len()].copy_from_slice(size);
    std::fs::write(&hostile, &header).unwrap();
    let run = run(envlock()
        .args(["snapshot", "--image"])
        .arg(format!("docker-archive:{}", hostile.display())));
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        !run.stderr.contains('\x1b'),
        "an escape reached the terminal: {:?}",
        run.stderr
    );
    assert_eq!(
        run.stderr
            .lines()
            .filter(|l| l.starts_with("error: "))
            .count(),
        1
    );
    assert!(!run.stderr.contains("root:x:0:0\n"), "{:?}", run.stderr);
    refused(
        &format!("oci-dir:{}", dir.path().display()),
        "no `index.json`",
        &[],
    );
}

/// A registry: a damaged blob, a missing image, and one that accepts connections but never
/// answers.
#[cfg_attr(not(envlock_docker), ignore = "needs a Docker engine")]
#[test]
fn bad_registry_sources_exit_2_naming_the_source_and_write_nothing() {
    need_engine();
    let registry = Registry::start(None);
    let pushed = registry.push(&fixture("no-python"), "damaged:v1");
    registry.damage_largest_blob();
    refused(
        &format!("registry:{pushed}"),
        "do not match its digest",
        &[],
    );
    refused(
        &format!("registry:{}/absent:v1", registry.host),
        "has no such image",
        &[],
    );
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = silent.local_addr().unwrap();
    let holder = std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in silent.incoming().take(4) {
            held.push(stream);
        }
        std::thread::sleep(std::time::Duration::from_secs(5));
    });
    refused(
        &format!("registry:{address}/silent:v1"),
        "did not answer",
        &[("ENVLOCK_REGISTRY_TIMEOUT", "1")],
    );
    drop(holder);
}
