//! `envlock snapshot --image` against the real engine, with fixture images built offline.

use std::process::Command;

use crate::docker::{containers_of, fixture, importlib_in_image, need_engine, private};
use crate::support::*;

fn image_snapshot(image: &str, extra: &[&str]) -> Run {
    run(envlock().args(["snapshot", "--image", image]).args(extra))
}

fn image_lock(image: &str, extra: &[&str]) -> toml::Table {
    let run = image_snapshot(image, extra);
    assert_eq!(
        run.code, 0,
        "snapshot --image {image} failed:\n{}",
        run.stderr
    );
    run.stdout.parse().unwrap()
}

fn capture_mode(lock: &toml::Table) -> &str {
    lock["image"]["capture"].as_str().unwrap()
}

/// Both capture modes give exactly what importlib.metadata reports inside the image.
fn assert_both_modes_match_importlib(name: &str) -> (toml::Table, toml::Table) {
    let image = private(name, "modes");
    let expected = importlib_in_image(&image);
    let exec = image_lock(&image, &[]);
    let stat = image_lock(&image, &["--no-exec"]);
    assert_eq!(capture_mode(&exec), "exec");
    assert_eq!(capture_mode(&stat), "static");
    assert_eq!(lock_packages(&exec), expected, "exec capture of {name}");
    assert_eq!(lock_packages(&stat), expected, "static capture of {name}");
    assert_eq!(
        exec["python"]["version"].as_str(),
        stat["python"]["version"].as_str()
    );
    assert_eq!(
        exec["python"]["executable"].as_str(),
        stat["python"]["executable"].as_str()
    );
    assert!(containers_of(&image).is_empty(), "containers left behind");
    (exec, stat)
}

#[cfg_attr(not(envlock_docker), ignore = "needs a Docker engine")]
#[test]
fn dist_packages_image() {
    need_engine();
    let (exec, _) = assert_both_modes_match_importlib("dist-packages");
    let numpy = lock_package(&exec, "numpy");
    assert_eq!(numpy["version"].as_str(), Some("1.26.4"));
    assert_eq!(
        numpy["location"].as_str(),
        Some("/usr/local/lib/python3.11/dist-packages")
    );
    assert_eq!(
        exec["platform"]["arch"].as_str(),
        Some(std::env::consts::ARCH)
    );
    assert_eq!(exec["platform"]["libc"].as_str(), Some("glibc"));
    assert_eq!(exec["platform"]["os-id"].as_str(), Some("debian"));
    let system: Vec<&str> = exec["system-packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert!(
        system.contains(&"libc6") && system.contains(&"python3"),
        "{system:?}"
    );
}

#[cfg_attr(not(envlock_docker), ignore = "needs a Docker engine")]
#[test]
fn venv_on_path_image() {
    need_engine();
    let (exec, stat) = assert_both_modes_match_importlib("venv");
    for lock in [&exec, &stat] {
        assert_eq!(lock["python"]["prefix"].as_str(), Some("/opt/venv"));
        let yaml = lock_package(lock, "pyyaml");
        assert_eq!(
            yaml["location"].as_str(),
            Some("/opt/venv/lib/python3.11/site-packages")
        );
    }
}

#[cfg_attr(not(envlock_docker), ignore = "needs a Docker engine")]
#[test]
fn image_without_a_shell() {
    need_engine();
    assert_both_modes_match_importlib("no-shell");
}

#[cfg_attr(not(envlock_docker), ignore = "needs a Docker engine")]
#[test]
fn image_without_python_still_gives_models_and_os() {
    need_engine();
    let image = private("no-python", "no-python");
    let run = image_snapshot(&image, &["--model", "model"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("has no `python3` or `python` on its PATH"),
        "{}",
        run.stderr
    );
    let lock: toml::Table = run.stdout.parse().unwrap();
    assert!(lock.get("python").is_none());
    assert_eq!(capture_mode(&lock), "static");
    assert_eq!(lock["platform"]["os-id"].as_str(), Some("envlock-scratch"));
    assert_eq!(lock["models"][0]["kind"].as_str(), Some("directory"));
    assert!(containers_of(&image).is_empty());
}

#[cfg_attr(not(envlock_docker), ignore = "needs a Docker engine")]
#[test]
fn models_in_the_image_hash_like_the_dev_side() {
    need_engine();
    let image = fixture("dist-packages");
    // Relative: resolved against the image's WORKDIR (/app), as the dev side resolves it
    // against the current folder.
    let in_image = image_lock(
        &image,
        &["--model", "model", "--model", "/app/model/weights.json"],
    );
    let dev = snapshot(
        envlock()
            .args([
                "snapshot",
                "--model",
                "model",
                "--model",
                "model/weights.json",
                "--python",
            ])
            .arg(system_python())
            .current_dir(root().join("fixtures/images")),
    );
    let (image_models, dev_models) = (
        in_image["models"].as_array().unwrap(),
        dev["models"].as_array().unwrap(),
    );
    for (image_model, dev_model) in image_models.iter().zip(dev_models) {
        assert_eq!(image_model["sha256"], dev_model["sha256"]);
        assert_eq!(image_model["size"], dev_model["size"]);
        assert_eq!(image_model.get("files"), dev_model.get("files"));
    }
    // The in-tree symlink was followed on both sides.
    let files = image_models[0]["files"].as_array().unwrap();
    let latest = files
        .iter()
        .find(|f| f["path"].as_str() == Some("latest.json"))
        .unwrap();
    assert_eq!(
        latest["sha256"],
        files
            .iter()
            .find(|f| f["path"].as_str() == Some("weights.json"))
            .unwrap()["sha256"]
    );
}

#[cfg_attr(not(envlock_docker), ignore = "needs a Docker engine")]
#[test]
fn image_facts_and_env_without_secrets() {
    need_engine();
    let image = fixture("dist-packages");
    let run = image_snapshot(&image, &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        !run.stdout.contains("not-for-the-lock"),
        "a non-allow-listed value leaked"
    );
    let lock: toml::Table = run.stdout.parse().unwrap();
    assert_eq!(lock["env"]["set"]["OMP_NUM_THREADS"].as_str(), Some("2"));
    let names: Vec<&str> = lock["image"]["env-names"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap())
        .collect();
    assert!(names.contains(&"API_TOKEN"), "{names:?}");
    assert_eq!(lock["source"]["kind"].as_str(), Some("image"));
    assert_eq!(lock["source"]["reference"].as_str(), Some(image.as_str()));
    assert!(lock["source"]["id"]
        .as_str()
        .unwrap()
        .starts_with("sha256:"));
    assert_eq!(lock["image"]["workdir"].as_str(), Some("/app"));
    assert!(lock["image"]["repo-tags"]
        .as_array()
        .unwrap()
        .iter()
        .any(|t| t.as_str() == Some(image.as_str())));
    assert!(!lock["image"]["layers"].as_array().unwrap().is_empty());
    let history = lock["image"]["history"].as_array().unwrap();
    assert!(history
        .iter()
        .any(|step| step["created-by"].as_str().unwrap().contains("pip install")));
}

#[cfg_attr(not(envlock_docker), ignore = "needs a Docker engine")]
#[test]
fn probe_that_times_out_leaves_no_container() {
    need_engine();
    let image = private("hang-python", "timeout");
    let run = run(envlock()
        .args(["snapshot", "--image", &image])
        .env("ENVLOCK_PROBE_TIMEOUT", "2"));
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("did not finish within 2s"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("--no-exec"), "{}", run.stderr);
    assert!(containers_of(&image).is_empty(), "containers left behind");
}

#[cfg_attr(not(envlock_docker), ignore = "needs a Docker engine")]
#[test]
fn probe_that_fails_leaves_no_container() {
    need_engine();
    let image = private("fail-python", "fail");
    let run = image_snapshot(&image, &[]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("exited with 3"), "{}", run.stderr);
    assert!(
        run.stderr.contains("boom: broken interpreter"),
        "{}",
        run.stderr
    );
    assert!(containers_of(&image).is_empty(), "containers left behind");
}

#[cfg_attr(not(envlock_docker), ignore = "needs a Docker engine")]
#[test]
fn errors_say_what_to_do() {
    need_engine();
    let missing = image_snapshot("envlock-test/does-not-exist:nope", &[]);
    assert_eq!(missing.code, 2);
    assert!(
        missing.stderr.contains("not found in the Docker engine"),
        "{}",
        missing.stderr
    );
    assert!(
        missing.stderr.contains("hint: build or load the image"),
        "{}",
        missing.stderr
    );

    let unreachable = run(envlock()
        .args(["snapshot", "--image", "anything"])
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock"));
    assert_eq!(unreachable.code, 2);
    assert!(
        unreachable
            .stderr
            .contains("cannot reach the Docker engine at `unix:///nonexistent/docker.sock`"),
        "{}",
        unreachable.stderr
    );
    assert!(
        unreachable.stderr.contains("DOCKER_HOST"),
        "{}",
        unreachable.stderr
    );

    let image = private("dist-packages", "errors");
    let model = image_snapshot(&image, &["--model", "/app/no-such-model.bin"]);
    assert_eq!(model.code, 2);
    assert!(
        model
            .stderr
            .contains("model `/app/no-such-model.bin` not found in image"),
        "{}",
        model.stderr
    );
    assert!(containers_of(&image).is_empty(), "containers left behind");
}

#[cfg_attr(not(envlock_docker), ignore = "needs a Docker engine")]
#[test]
fn image_for_another_platform_is_refused_for_exec_and_read_statically() {
    need_engine();
    let image = fixture("foreign-platform");
    let refused = image_snapshot(&image, &[]);
    assert_eq!(refused.code, 2, "{}", refused.stderr);
    assert!(
        refused.stderr.contains("but this engine runs"),
        "{}",
        refused.stderr
    );
    assert!(
        refused
            .stderr
            .contains("hint: capture it without running anything with `--no-exec`"),
        "{}",
        refused.stderr
    );
    let lock = image_lock(&image, &["--no-exec", "--model", "model"]);
    assert_ne!(
        lock["platform"]["arch"].as_str(),
        Some(std::env::consts::ARCH)
    );
    assert_eq!(lock["platform"]["os-id"].as_str(), Some("envlock-foreign"));
    assert_eq!(lock["models"][0]["kind"].as_str(), Some("directory"));
}

#[cfg_attr(not(envlock_docker), ignore = "needs a Docker engine")]
#[test]
fn pull_only_when_asked_and_its_failure_is_clear() {
    need_engine();
    // Without --pull, a missing image is reported at once and nothing is fetched.
    let missing = image_snapshot("envlock-test/not-in-any-registry:v1", &[]);
    assert_eq!(missing.code, 2);
    assert!(
        missing.stderr.contains("envlock never pulls"),
        "{}",
        missing.stderr
    );
    // With --pull the engine is asked; no registry is reachable from the test machine.
    let pulled = image_snapshot("envlock-test/not-in-any-registry:v1", &["--pull"]);
    assert_eq!(pulled.code, 2);
    assert!(
        pulled
            .stderr
            .contains("cannot pull `envlock-test/not-in-any-registry:v1`"),
        "{}",
        pulled.stderr
    );
}

/// A saved image (`docker load`) whose history has every form both builders write; the
/// legacy builder here cannot produce BuildKit's, so the history is written by hand.
#[cfg_attr(not(envlock_docker), ignore = "needs a Docker engine")]
#[test]
fn history_secrets_of_both_builders_never_reach_the_lock() {
    need_engine();
    let secrets = [
        "hf_SECRET1",
        "SECRET2",
        "SECRET3",
        "SECRET4",
        "SECRET5",
        "SECRET6",
    ];
    let steps = [
        "/bin/sh -c #(nop) ADD file:0123 in / ",
        "/bin/sh -c #(nop)  ENV API_TOKEN=hf_SECRET1 OMP_NUM_THREADS=2",
        "/bin/sh -c #(nop)  ENV PASSWORD SECRET2 and more",
        "/bin/sh -c #(nop)  ARG DB_PASSWORD=SECRET3",
        "|2 HF_TOKEN=SECRET4 MODE=prod /bin/sh -c pip install -r requirements.txt",
        "ENV AWS_SECRET_ACCESS_KEY=SECRET5",
        "ARG HF_TOKEN=SECRET6",
        "RUN |2 HF_TOKEN=SECRET4 MODE=prod /bin/sh -c python train.py # buildkit",
        "RUN /bin/sh -c echo MY_ENV x # buildkit",
        "LABEL org.opencontainers.image.version=1.2",
    ];
    let tag = "envlock-test/history:v1";
    load_image_with_history(tag, &steps);
    let run = image_snapshot(tag, &["--no-exec"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    for secret in secrets {
        assert!(!run.stdout.contains(secret), "{secret} reached the lock");
    }
    let lock: toml::Table = run.stdout.parse().unwrap();
    let history: Vec<&str> = lock["image"]["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|step| step["created-by"].as_str().unwrap())
        .collect();
    assert_eq!(
        history,
        [
            "/bin/sh -c #(nop) ADD file:0123 in / ",
            "/bin/sh -c #(nop)  ENV API_TOKEN=<redacted> OMP_NUM_THREADS=2",
            "/bin/sh -c #(nop)  ENV PASSWORD <redacted>",
            "/bin/sh -c #(nop)  ARG DB_PASSWORD=<redacted>",
            "|2 HF_TOKEN=<redacted> MODE=<redacted> /bin/sh -c pip install -r requirements.txt",
            "ENV AWS_SECRET_ACCESS_KEY=<redacted>",
            "ARG HF_TOKEN=<redacted>",
            "RUN |2 HF_TOKEN=<redacted> MODE=<redacted> /bin/sh -c python train.py # buildkit",
            "RUN /bin/sh -c echo MY_ENV x # buildkit",
            "LABEL org.opencontainers.image.version=1.2",
        ]
    );
}

/// Writes a `docker save` archive (legacy layout) of one small layer and the history
/// `steps` (the first owns the layer), and loads it as `tag`.
fn load_image_with_history(tag: &str, steps: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let mut layer = tar::Builder::new(Vec::new());
    let text = b"ID=envlock-history\nVERSION_ID=1\n";
    let mut header = tar::Header::new_gnu();
    header.set_size(text.len() as u64);
    header.set_mode(0o644);
    header.set_cksum();
    layer
        .append_data(&mut header, "etc/os-release", &text[..])
        .unwrap();
    let layer = layer.into_inner().unwrap();
    let diff_id = crate::support::sha256_of(&layer);
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    };
    let history: Vec<serde_json::Value> = steps
        .iter()
        .enumerate()
        .map(|(index, step)| {
            serde_json::json!({"created": "2026-01-01T00:00:00Z", "created_by": step,
                               "empty_layer": index > 0})
        })
        .collect();
    let config = serde_json::json!({
        "architecture": arch, "os": "linux", "created": "2026-01-01T00:00:00Z",
        "config": {"Env": ["PATH=/usr/bin"], "Cmd": ["/bin/true"]},
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": history,
    });
    let manifest = serde_json::json!([
        {"Config": "config.json", "RepoTags": [tag], "Layers": ["layer/layer.tar"]}
    ]);
    let archive_path = dir.path().join("image.tar");
    let mut archive = tar::Builder::new(std::fs::File::create(&archive_path).unwrap());
    for (name, bytes) in [
        ("config.json", config.to_string().into_bytes()),
        ("manifest.json", manifest.to_string().into_bytes()),
        ("layer/layer.tar", layer),
    ] {
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        archive.append_data(&mut header, name, &bytes[..]).unwrap();
    }
    archive.finish().unwrap();
    must(
        Command::new("docker")
            .arg("load")
            .arg("-q")
            .arg("-i")
            .arg(&archive_path),
    );
}

/// A hard link inside a model hashes as the file it links to (as on the dev side); a model
/// path that is a symlink climbing above `/` resolves as the kernel does (`/..` is `/`); a
/// link to nothing is an error naming the path.
#[cfg_attr(not(envlock_docker), ignore = "needs a Docker engine")]
#[test]
fn hard_links_and_climbing_symlinks_in_image_models() {
    need_engine();
    let image = crate::docker::derived(
        crate::docker::base_image(),
        "RUN mkdir -p /app/hl && printf w > /app/hl/weights.bin \
         && ln /app/hl/weights.bin /app/hl/copy.bin \
         && ln -s ../../../../../app/hl /app/climb && ln -s /nowhere /app/dangling",
    );
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("hl");
    std::fs::create_dir(&model).unwrap();
    std::fs::write(model.join("weights.bin"), "w").unwrap();
    std::fs::hard_link(model.join("weights.bin"), model.join("copy.bin")).unwrap();
    let dev = snapshot(
        envlock()
            .args(["snapshot", "--model", "hl", "--python"])
            .arg(system_python())
            .current_dir(dir.path()),
    );
    let lock = image_lock(
        &image,
        &["--no-exec", "--model", "/app/hl", "--model", "/app/climb"],
    );
    let models = lock["models"].as_array().unwrap();
    assert_eq!(models[0]["sha256"], dev["models"][0]["sha256"]);
    assert_eq!(models[0]["files"], dev["models"][0]["files"]);
    assert_eq!(models[1]["sha256"], models[0]["sha256"]);
    let dangling = image_snapshot(&image, &["--no-exec", "--model", "/app/dangling"]);
    assert_eq!(dangling.code, 2, "{}", dangling.stderr);
    assert!(
        dangling
            .stderr
            .contains("model `/nowhere` not found in image"),
        "{}",
        dangling.stderr
    );
    assert!(containers_of(&image).is_empty(), "containers left behind");
}
