//! RPM-based images: the system packages from RPM's sqlite database, and the Fedora/RHEL
//! layout of the system Python (`lib64` before `lib`). No RPM-based image can be pulled, so
//! the harness builds one offline: empty packages made with Debian's `rpmbuild`, installed
//! into a root folder's database with `rpm --root`, copied into the `rpm` fixture image.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::docker::{containers_of, fixture_with, importlib_in_image, need_engine, private_copy};
use crate::support::*;

/// Builds the packages of `fixtures/images/rpm/packages.txt` into a fresh root folder's
/// database; the folder holding `var/lib/rpm`.
pub fn rpm_root(work: &Path) -> PathBuf {
    let folder = root().join("fixtures/images/rpm");
    let list = std::fs::read_to_string(folder.join("packages.txt")).unwrap();
    let top = work.join("rpmbuild");
    for line in list
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
    {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let mut build = Command::new(crate::support::tool("rpmbuild"));
        build
            .arg("-bb")
            .arg("--quiet")
            .args(["--define", &format!("_topdir {}", top.display())])
            .args(["--define", &format!("pkg_name {}", fields[0])])
            .args(["--define", &format!("pkg_version {}", fields[1])])
            .args(["--define", &format!("pkg_release {}", fields[2])]);
        if let Some(epoch) = fields.get(3) {
            build.args(["--define", &format!("pkg_epoch {epoch}")]);
        }
        must(build.arg(folder.join("package.spec")));
    }
    let rpms: Vec<PathBuf> = walk(&top.join("RPMS"))
        .into_iter()
        .filter(|path| path.extension().is_some_and(|e| e == "rpm"))
        .collect();
    assert!(!rpms.is_empty(), "rpmbuild made no package");
    let root_folder = work.join("root");
    must(
        Command::new(crate::support::tool("rpm"))
            .arg("--root")
            .arg(&root_folder)
            .args(["--dbpath", "/var/lib/rpm", "-i", "--nodeps", "--justdb"])
            .args(&rpms),
    );
    root_folder
}

/// The `rpm` fixture image, with the database of `root_folder` (from [`rpm_root`]).
pub fn rpm_image(root_folder: &Path) -> String {
    let database = root_folder.join("var/lib/rpm");
    fixture_with("rpm", |context| {
        let status = Command::new("cp")
            .arg("-a")
            .arg(&database)
            .arg(context.join("rpm/rpmdb"))
            .status()
            .unwrap();
        assert!(status.success());
    })
}

fn walk(folder: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(folder).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            found.extend(walk(&path));
        } else {
            found.push(path);
        }
    }
    found
}

/// What `rpm -qa` says of the root folder: `(name, [epoch:]version-release)`.
fn rpm_query(root_folder: &Path) -> BTreeSet<(String, String)> {
    let output = Command::new(crate::support::tool("rpm"))
        .arg("--root")
        .arg(root_folder)
        .args(["--dbpath", "/var/lib/rpm", "-qa", "--qf"])
        .arg("%{NAME} %|EPOCH?{%{EPOCH}:}:{}|%{VERSION}-%{RELEASE}\\n")
        .output()
        .unwrap();
    assert!(output.status.success());
    String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|line| {
            let (name, version) = line.split_once(' ').unwrap();
            (name.to_string(), version.to_string())
        })
        .collect()
}

fn system_packages(lock: &toml::Table) -> BTreeSet<(String, String)> {
    lock["system-packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            assert_eq!(p["manager"].as_str(), Some("rpm"));
            let text = |key: &str| p[key].as_str().unwrap().to_string();
            (text("name"), text("version"))
        })
        .collect()
}

#[cfg_attr(not(envlock_docker), ignore = "needs a Docker engine")]
#[test]
fn rpm_image_gives_its_packages_and_the_lib64_layout_in_both_modes() {
    need_engine();
    let work = tempfile::tempdir().unwrap();
    let root_folder = rpm_root(work.path());
    let expected = rpm_query(&root_folder);
    assert!(expected.contains(&("openssl-libs".into(), "1:3.0.7-27.el9".into())));
    // A copy of its own: the SBOM test runs the same image, and this one counts leftovers.
    let image = private_copy(&rpm_image(&root_folder), "rpm");
    let exec = snapshot(envlock().args(["snapshot", "--image", &image]));
    let stat = snapshot(envlock().args(["snapshot", "--no-exec", "--image", &image]));
    assert_eq!(exec["image"]["capture"].as_str(), Some("exec"));
    assert_eq!(stat["image"]["capture"].as_str(), Some("static"));

    // The system packages are what `rpm -qa` says, in both modes.
    assert_eq!(system_packages(&exec), expected);
    assert_eq!(system_packages(&stat), expected);
    for lock in [&exec, &stat] {
        assert_eq!(lock["platform"]["libc"].as_str(), Some("glibc"));
        assert_eq!(lock["platform"]["libc-version"].as_str(), Some("2.36"));
    }

    // Python packages in lib64's site-packages and in lib's, as importlib sees them.
    let seen = importlib_in_image(&image);
    assert!(
        seen.contains(&("pyyaml".into(), "6.0.2".into())),
        "{seen:?}"
    );
    assert!(seen.contains(&("six".into(), "1.16.0".into())), "{seen:?}");
    assert_eq!(lock_packages(&exec), seen, "exec capture");
    assert_eq!(lock_packages(&stat), seen, "static capture");
    let location = |lock: &toml::Table, name: &str| {
        lock_package(lock, name)["location"]
            .as_str()
            .unwrap()
            .to_string()
    };
    for lock in [&exec, &stat] {
        assert_eq!(
            location(lock, "pyyaml"),
            "/usr/lib64/python3.11/site-packages"
        );
        assert_eq!(location(lock, "six"), "/usr/lib/python3.11/site-packages");
    }
    // The static side knows the version from the python3.11 package, as exec does.
    assert_eq!(
        exec["python"]["version"].as_str(),
        stat["python"]["version"].as_str()
    );
    assert!(containers_of(&image).is_empty(), "containers left behind");

    // The same image with openssl-libs one release on, as a rebuilt base would bring, is
    // drift. (One test per image: another test's containers would be "left behind" here.)
    let dir = tempfile::tempdir().unwrap();
    let lock = dir.path().join("image.lock");
    std::fs::write(&lock, toml::to_string(&exec).unwrap()).unwrap();
    let text = toml::to_string(&exec)
        .unwrap()
        .replace("1:3.0.7-27.el9", "1:3.0.7-28.el9");
    let older = dir.path().join("older.lock");
    std::fs::write(&older, text).unwrap();
    let run = run(envlock()
        .args(["diff", "--format", "json", "--fail-on", "info"])
        .arg(&older)
        .arg(&lock));
    assert_eq!(run.code, 1, "{}", run.stderr);
    let report: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let findings = report["findings"].as_array().unwrap();
    assert_eq!(findings.len(), 1, "{report:#}");
    assert_eq!(findings[0]["code"], "system-package");
    assert_eq!(findings[0]["subject"], "openssl-libs");
    assert_eq!(findings[0]["baseline"], "1:3.0.7-28.el9");
    assert_eq!(findings[0]["target"], "1:3.0.7-27.el9");
}

#[cfg_attr(not(envlock_docker), ignore = "needs a Docker engine")]
#[test]
fn an_old_berkeley_database_is_a_warning_not_silence() {
    need_engine();
    let image = crate::docker::derived(
        crate::docker::base_image(),
        "RUN rm -rf /var/lib/dpkg && mkdir -p /var/lib/rpm \
         && printf 'not a sqlite file' > /var/lib/rpm/Packages",
    );
    let run = run(envlock().args(["snapshot", "--no-exec", "--image", &image]));
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr.contains("Berkeley DB form of RPM before 4.16"),
        "{}",
        run.stderr
    );
}
