//! Consequences under causes, and cross-platform baselines: a lock as a macOS arm64
//! snapshot writes it (made from a real snapshot of the image's runtime, with the platform,
//! markers, wheel tags, RECORD digests and vendored libraries a Mac has) against the Linux
//! image with the same versions; and the suspects of a failing golden case.

use crate::docker::{model_image, need_engine, private_copy};
use crate::support::*;

/// The image's own lock, rewritten as the dev snapshot of a Mac with the same versions.
fn as_macos_snapshot(mut lock: toml::Table) -> toml::Table {
    let set = |table: &mut toml::Table, key: &str, value: &str| {
        table.insert(key.to_string(), toml::Value::String(value.to_string()));
    };
    let source = lock["source"].as_table_mut().unwrap();
    source.clear();
    set(source, "kind", "python");
    set(source, "interpreter", "/Users/dev/salary/.venv/bin/python");
    let platform = lock["platform"].as_table_mut().unwrap();
    platform.clear();
    set(platform, "os", "darwin");
    set(platform, "arch", "arm64");
    let python = lock["python"].as_table_mut().unwrap();
    let markers = python
        .entry("markers")
        .or_insert_with(|| toml::Value::Table(toml::Table::new()))
        .as_table_mut()
        .unwrap();
    set(markers, "sys_platform", "darwin");
    set(markers, "platform_system", "Darwin");
    set(markers, "platform_machine", "arm64");
    python.remove("soabi");
    for package in lock["packages"].as_array_mut().unwrap() {
        let package = package.as_table_mut().unwrap();
        let Some(tags) = package.get_mut("wheel-tags").and_then(|t| t.as_array_mut()) else {
            continue;
        };
        let compiled = tags
            .iter()
            .any(|tag| !tag.as_str().unwrap().ends_with("-none-any"));
        if !compiled {
            continue;
        }
        for tag in tags.iter_mut() {
            let text = tag.as_str().unwrap();
            let (interpreter, abi) = {
                let mut parts = text.splitn(3, '-');
                (
                    parts.next().unwrap().to_string(),
                    parts.next().unwrap().to_string(),
                )
            };
            *tag = toml::Value::String(format!("{interpreter}-{abi}-macosx_11_0_arm64"));
        }
        // Another wheel, other files: another RECORD digest.
        let record = "sha256:a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1";
        set(package, "record", record);
    }
    for key in ["system-packages", "image"] {
        lock.remove(key);
    }
    // numpy's Mac wheel vendors its OpenBLAS as a .dylib; the Mac has a CPU of its own.
    if let Some(numerics) = lock.get_mut("numerics").and_then(|n| n.as_table_mut()) {
        let libraries = numerics
            .get_mut("libraries")
            .and_then(|l| l.as_array_mut())
            .map(std::mem::take)
            .unwrap_or_default();
        let vendored: Vec<toml::Value> = libraries
            .into_iter()
            .filter(|l| l.get("shipped-by").and_then(|s| s.as_str()) == Some("numpy"))
            .map(|mut library| {
                let table = library.as_table_mut().unwrap();
                let path = "/Users/dev/salary/.venv/lib/python3.11/site-packages/numpy/.dylibs/libopenblas64_.0.dylib";
                set(table, "path", path);
                set(table, "sha256", "sha256:b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2");
                library
            })
            .collect();
        numerics.insert("libraries".into(), toml::Value::Array(vendored));
    }
    lock
}

fn report(run: &Run) -> serde_json::Value {
    serde_json::from_str(&run.stdout).unwrap_or_else(|_| panic!("{}\n{}", run.stdout, run.stderr))
}

#[cfg_attr(not(envlock_docker), ignore = "needs a Docker engine")]
#[test]
fn a_laptop_baseline_groups_the_platform_and_can_be_declared_cross_platform() {
    need_engine();
    // A copy of its own: the golden tests check the clean image for leftover containers.
    let image = private_copy(&model_image("salary", "clean", |_| {}), "causes");
    let dir = tempfile::tempdir().unwrap();
    // The image's runtime captured for real, then written as the Mac would write it.
    let linux = snapshot(
        envlock()
            .args(["snapshot", "--image", &image])
            .current_dir(dir.path()),
    );
    let mut mac = as_macos_snapshot(linux);
    let lock = dir.path().join("laptop.lock");
    std::fs::write(&lock, toml::to_string(&mac).unwrap()).unwrap();
    let diff = |lock: &std::path::Path, extra: &[&str], format: &str| {
        run(envlock()
            .arg("diff")
            .arg(lock)
            .arg(&image)
            .args(["--format", format, "--no-golden"])
            .args(extra)
            .current_dir(dir.path()))
    };
    let plain = diff(&lock, &[], "json");
    assert_eq!(plain.code, 1, "{}", plain.stderr);
    let json = report(&plain);
    let findings = json["findings"].as_array().unwrap();
    let platform: Vec<&serde_json::Value> = findings
        .iter()
        .filter(|f| f["code"] == "platform-os" || f["code"] == "platform-arch")
        .collect();
    assert_eq!(platform.len(), 2, "{json:#}");
    assert!(platform
        .iter()
        .all(|f| f.get("cause").is_none() && f["severity"] == "error"));
    // Every other finding is a consequence of the platform: other wheel tags, RECORD digests,
    // numpy's vendored BLAS.
    let rest: Vec<&serde_json::Value> = findings
        .iter()
        .filter(|f| f["code"] != "platform-os" && f["code"] != "platform-arch")
        .collect();
    assert!(rest
        .iter()
        .any(|f| f["code"] == "package-build" && f["subject"] == "numpy"));
    assert!(rest
        .iter()
        .any(|f| f["code"] == "package-files" && f["subject"] == "numpy"));
    assert!(rest
        .iter()
        .any(|f| f["code"] == "numeric-library" && f["subject"] == "numpy:blas"));
    for finding in &rest {
        assert_eq!(finding["cause"]["code"], "platform-arch", "{finding:#}");
    }
    assert_eq!(
        json["summary"]["explained"].as_u64(),
        Some(rest.len() as u64)
    );
    assert_eq!(json["summary"]["causes"], 1);
    assert!(json["notes"][0]
        .as_str()
        .unwrap()
        .contains("--cross-platform"));
    // People read the consequences under their cause, not as lines of their own.
    let human = diff(&lock, &[], "human");
    assert!(human.stdout.contains("… and "), "{}", human.stdout);
    assert!(!human
        .stdout
        .lines()
        .any(|line| line.trim_start().starts_with("package-files")));
    assert!(human
        .stdout
        .contains("note: the two runtimes are on another OS"));
    // Declared, by flag or by policy: everything is information, the gate passes.
    let declared = diff(&lock, &["--cross-platform"], "json");
    assert_eq!(declared.code, 0, "{}", declared.stdout);
    let json = report(&declared);
    assert!(json["findings"]
        .as_array()
        .unwrap()
        .iter()
        .all(|f| f["severity"] == "info"));
    assert!(json.get("notes").is_none());
    std::fs::write(
        dir.path().join("envlock.toml"),
        "[policy]\ncross-platform = true\n",
    )
    .unwrap();
    assert_eq!(diff(&lock, &[], "json").code, 0);
    // Versions still gate.
    for package in mac["packages"].as_array_mut().unwrap() {
        if package["name"].as_str() == Some("numpy") {
            package.as_table_mut().unwrap()["version"] = toml::Value::String("1.25.2".into());
        }
    }
    let older = dir.path().join("older.lock");
    std::fs::write(&older, toml::to_string(&mac).unwrap()).unwrap();
    let gated = diff(&older, &["--cross-platform"], "json");
    assert_eq!(gated.code, 1);
    let json = report(&gated);
    let version = json["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["code"] == "package-version")
        .unwrap();
    assert_eq!(version["severity"], "error");
}
