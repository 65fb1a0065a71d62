//! The Docker side of the test harness: the engine (required under `CI=true`), an offline
//! base image made with debootstrap, and the fixture images of `fixtures/images`, each
//! cached by a tag that hashes its inputs so a second run reuses it.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};

use crate::support::{cache_root, must, one_at_a_time, root};

/// The offline base: Debian bookworm with python3, pip and venv, from debootstrap.
const BASE_TAG: &str = "envlock-test/base:bookworm-v1";

/// Fails the test unless the engine answers. Tests that call it carry
/// `#[cfg_attr(not(envlock_docker), ignore = "needs a Docker engine")]`: where the cfg says
/// an engine exists (its socket, `DOCKER_HOST`, or `CI=true`) one that does not answer is a
/// failure, never a pass, and elsewhere they report themselves ignored.
#[track_caller]
pub fn need_engine() {
    static ANSWERS: OnceLock<bool> = OnceLock::new();
    let answers = *ANSWERS.get_or_init(|| {
        Command::new("docker")
            .args(["info", "--format", "{{.ServerVersion}}"])
            .output()
            .is_ok_and(|output| output.status.success())
    });
    assert!(
        answers,
        "the Docker engine does not answer (`docker info` failed) although this machine has \
         its socket, DOCKER_HOST or CI=true: start it (`service docker start`), or build the \
         tests where none is expected (no socket, DOCKER_HOST and CI unset: build.rs \
         decides), and the Docker tests report themselves ignored"
    );
}

fn image_exists(tag: &str) -> bool {
    Command::new("docker")
        .args(["image", "inspect", "--format", "{{.Id}}", tag])
        .output()
        .is_ok_and(|output| output.status.success())
}

/// The Debian mirror this machine's apt uses, so debootstrap reaches what apt reaches.
fn debian_mirror() -> String {
    let sources = [
        "/etc/apt/sources.list.d/debian.sources",
        "/etc/apt/sources.list",
    ];
    for file in sources {
        let Ok(text) = std::fs::read_to_string(file) else {
            continue;
        };
        for line in text.lines() {
            let words: Vec<&str> = line.split_whitespace().collect();
            let uri = match words.as_slice() {
                ["URIs:", uri, ..] => *uri,
                ["deb", uri, ..] => *uri,
                _ => continue,
            };
            if uri.ends_with("/debian") || uri.ends_with("/debian/") {
                return uri.to_string();
            }
        }
    }
    "http://deb.debian.org/debian".to_string()
}

/// The offline base image (built on first use).
pub fn base_image() -> &'static str {
    // Its own lock: tests that start together on a fresh machine must not run two
    // debootstraps into one folder (fixture builds call this holding their own tag's lock).
    static BASE: Mutex<()> = Mutex::new(());
    let _guard = BASE.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if image_exists(BASE_TAG) {
        return BASE_TAG;
    }
    let folder = cache_root().join("rootfs");
    let _ = std::fs::remove_dir_all(&folder);
    must(
        Command::new(crate::support::tool("debootstrap"))
            .args([
                "--variant=minbase",
                "--include=python3,python3-pip,python3-venv",
                "bookworm",
            ])
            .arg(&folder)
            .arg(debian_mirror()),
    );
    let script = format!(
        "tar -C '{}' -c . | docker import - {BASE_TAG}",
        folder.display()
    );
    must(Command::new("sh").args(["-c", &script]));
    let _ = std::fs::remove_dir_all(&folder);
    BASE_TAG
}

/// Wheels for the images, downloaded once (for CPython 3.11 on this machine's arch). Two
/// versions of one package need two downloads: one resolve cannot hold both.
fn wheels() -> PathBuf {
    let guard = one_at_a_time("image wheels");
    let _guard = guard.lock();
    let folder = cache_root().join("image-wheels-v2");
    if folder.join(".ready").exists() {
        return folder;
    }
    let arch = String::from_utf8(Command::new("uname").arg("-m").output().unwrap().stdout).unwrap();
    let sets: [&[&str]; 2] = [
        &[
            "numpy==1.26.4",
            "PyYAML==6.0.2",
            "typing_extensions==4.12.2",
            "packaging==24.1",
        ],
        &["typing_extensions==4.11.0", "six==1.16.0"],
    ];
    for set in sets {
        must(
            Command::new(crate::support::system_python())
                .args(["-m", "pip", "download", "-q", "--disable-pip-version-check"])
                .args(["--only-binary=:all:", "--implementation", "cp"])
                .args(["--python-version", "3.11", "--abi", "cp311", "--platform"])
                .arg(format!("manylinux2014_{}", arch.trim()))
                .arg("-d")
                .arg(&folder)
                .args(set),
        );
    }
    std::fs::write(folder.join(".ready"), "").unwrap();
    folder
}

fn hash_tree(path: &Path, hash: &mut u64) {
    let mut entries: Vec<_> = std::fs::read_dir(path)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for entry in entries {
        let mix = |hash: &mut u64, bytes: &[u8]| {
            for &byte in bytes {
                *hash = (*hash ^ u64::from(byte)).wrapping_mul(0x100000001b3);
            }
        };
        // By the path inside the repository: another checkout of the same files reuses the
        // images (CI's fresh clone on this machine finds them built).
        let relative = entry.strip_prefix(root()).unwrap_or(&entry);
        mix(hash, relative.to_string_lossy().as_bytes());
        let meta = std::fs::symlink_metadata(&entry).unwrap();
        if meta.is_symlink() {
            mix(
                hash,
                std::fs::read_link(&entry)
                    .unwrap()
                    .to_string_lossy()
                    .as_bytes(),
            );
        } else if meta.is_dir() {
            hash_tree(&entry, hash);
        } else {
            mix(hash, &std::fs::read(&entry).unwrap());
        }
    }
}

/// The folders of `fixtures/images` the image `name` is built from: its own, and those its
/// Dockerfile copies from. Its tag hashes only these, so a change to one fixture rebuilds
/// only the images that use it.
fn inputs_of(fixtures: &Path, name: &str) -> Vec<String> {
    let dockerfile = std::fs::read_to_string(fixtures.join(name).join("Dockerfile")).unwrap();
    let mut inputs = vec![name.to_string()];
    for line in dockerfile.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        let Some((instruction, rest)) = words.split_first() else {
            continue;
        };
        if !instruction.eq_ignore_ascii_case("COPY") && !instruction.eq_ignore_ascii_case("ADD") {
            continue;
        }
        let sources: Vec<&str> = rest
            .iter()
            .copied()
            .filter(|w| !w.starts_with("--"))
            .collect();
        for source in sources.iter().take(sources.len().saturating_sub(1)) {
            let folder = source.split('/').next().unwrap_or_default().to_string();
            if fixtures.join(&folder).exists() && !inputs.contains(&folder) {
                inputs.push(folder);
            }
        }
    }
    inputs.sort();
    inputs
}

/// The fixture image `name` (a folder of `fixtures/images`), built from the offline base
/// on first use and reused while its inputs are unchanged.
pub fn fixture(name: &str) -> String {
    build_fixture(name, false, |_| {})
}

/// The fixture image `name` whose build context `edit` completes with generated files
/// (cached as [`fixture`] is: by the hash of the folders it is built from).
pub fn fixture_with(name: &str, edit: impl FnOnce(&Path)) -> String {
    build_fixture(name, false, edit)
}

/// The fixture `name` built again from scratch (`--no-cache`): the same content under
/// another image id.
pub fn rebuilt(name: &str) -> String {
    build_fixture(name, true, |_| {})
}

fn build_fixture(name: &str, again: bool, edit: impl FnOnce(&Path)) -> String {
    let fixtures = root().join("fixtures/images");
    let mut hash = 0xcbf29ce484222325u64;
    for input in inputs_of(&fixtures, name) {
        hash_tree(&fixtures.join(input), &mut hash);
    }
    let suffix = if again { "-rebuilt" } else { "" };
    let tag = format!("envlock-test/{name}{suffix}:{hash:016x}");
    // One build of each tag at a time; other images build alongside it.
    let guard = one_at_a_time(&tag);
    let _guard = guard.lock();
    if image_exists(&tag) {
        return tag;
    }
    let mut flags = Vec::new();
    if again {
        flags.push("--no-cache".to_string());
    }
    let platform = match (name, std::env::consts::ARCH) {
        ("foreign-platform", "x86_64") => Some("linux/arm64"),
        ("foreign-platform", _) => Some("linux/amd64"),
        _ => None,
    };
    if let Some(platform) = platform {
        // The legacy builder's cache ignores the platform: without --no-cache it reuses the
        // identical steps of another fixture, built for this machine.
        flags.extend(["--no-cache", "--platform", platform].map(str::to_string));
    }
    let dockerfile = format!("{name}/Dockerfile");
    build_image(&fixtures, name, &tag, &flags, Some(&dockerfile), edit);
    tag
}

/// Copies `source` and the wheels into a fresh build context, lets `edit` change it, and
/// builds `tag` from it on the offline base with `flags` (and `dockerfile`, relative to the
/// context, when not its own `Dockerfile`).
fn build_image(
    source: &Path,
    context_name: &str,
    tag: &str,
    flags: &[String],
    dockerfile: Option<&str>,
    edit: impl FnOnce(&Path),
) {
    let base = base_image();
    // A folder of its own: another image of the same fixture may be building alongside.
    let contexts = cache_root().join("contexts");
    std::fs::create_dir_all(&contexts).unwrap();
    let build = tempfile::Builder::new()
        .prefix(context_name)
        .tempdir_in(&contexts)
        .unwrap();
    let context = build.path().join("context");
    must(Command::new("cp").arg("-a").arg(source).arg(&context));
    must(
        Command::new("cp")
            .arg("-a")
            .arg(wheels())
            .arg(context.join("wheels")),
    );
    edit(&context);
    let mut docker = Command::new("docker");
    // --force-rm: a failed step leaves no container behind.
    docker
        .args(["build", "-q", "--force-rm", "--build-arg"])
        .arg(format!("BASE={base}"));
    docker.args(flags);
    if let Some(dockerfile) = dockerfile {
        docker.arg("-f").arg(context.join(dockerfile));
    }
    must(docker.arg("-t").arg(tag).arg(&context));
}

/// envlock's containers (it labels its own) of exactly `image`, running or not. Docker's
/// `ancestor` filter also matches images built on `image`, such as another test's private
/// copy ([`private_copy`]), so each container's own image is compared.
pub fn containers_of(image: &str) -> Vec<String> {
    let found = containers(
        &["label=org.envlock.role", &format!("ancestor={image}")],
        true,
    );
    if found.is_empty() {
        return found;
    }
    let text = |command: &mut Command| String::from_utf8(command.output().unwrap().stdout).unwrap();
    let image_id =
        text(Command::new("docker").args(["image", "inspect", "--format", "{{.Id}}", image]));
    // One removed since the listing is absent here (inspect names it on stderr).
    let images = text(
        Command::new("docker")
            .args(["container", "inspect", "--format", "{{.Id}} {{.Image}}"])
            .args(&found),
    );
    found
        .into_iter()
        .filter(|short| {
            images.lines().any(|line| {
                line.split_once(' ').is_some_and(|(container, of)| {
                    container.starts_with(short.as_str()) && of == image_id.trim()
                })
            })
        })
        .collect()
}

/// Container ids matching every `docker ps` filter; stopped ones too when `all`.
pub fn containers(filters: &[&str], all: bool) -> Vec<String> {
    let mut command = Command::new("docker");
    command.args(["ps", "-q"]);
    if all {
        command.arg("-a");
    }
    for filter in filters {
        command.args(["--filter", filter]);
    }
    let output = command.output().unwrap();
    String::from_utf8(output.stdout)
        .unwrap()
        .split_whitespace()
        .map(str::to_string)
        .collect()
}

/// What `importlib.metadata` reports inside `image`, run with its own `python3`.
pub fn importlib_in_image(image: &str) -> std::collections::BTreeSet<(String, String)> {
    importlib_with(image, "python3")
}

/// What `importlib.metadata` reports inside `image` (as its USER), run with `python`.
pub fn importlib_with(image: &str, python: &str) -> std::collections::BTreeSet<(String, String)> {
    crate::support::importlib_answer(
        Command::new("docker")
            .args(["run", "--rm", "--network", "none", "--entrypoint"])
            .args([python, image, "-c"])
            .arg(crate::support::IMPORTLIB_SCRIPT),
    )
}

/// `base` with the Dockerfile `lines` added (ENTRYPOINT, CMD, USER, ENV), tagged by their
/// hash so that a second run reuses it.
pub fn derived(base: &str, lines: &str) -> String {
    let mut hash = 0xcbf29ce484222325u64;
    for byte in base.bytes().chain(lines.bytes()) {
        hash = (hash ^ u64::from(byte)).wrapping_mul(0x100000001b3);
    }
    let tag = format!("envlock-test/derived:{hash:016x}");
    let guard = one_at_a_time(&tag);
    let _guard = guard.lock();
    if image_exists(&tag) {
        return tag;
    }
    build_from_text(&tag, &format!("FROM {base}\n{lines}\n"));
    tag
}

/// Builds `tag` from a Dockerfile given as text (no build context).
fn build_from_text(tag: &str, dockerfile: &str) {
    // Its output (and the legacy builder's deprecation notice) is shown only on failure.
    let mut child = Command::new("docker")
        .args(["build", "-q", "-t", tag, "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), dockerfile.as_bytes()).unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "building {tag}:\n{dockerfile}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A copy of fixture `name` with its own image id, for a test that checks for leftover
/// containers: tests run in parallel, and another test's live probe of the same image
/// must not count.
pub fn private(name: &str, test: &str) -> String {
    private_copy(&fixture(name), test)
}

/// `image` with a label of its own (a layer-free copy under another image id), for a test
/// that checks for leftover containers of an image other tests also run.
pub fn private_copy(image: &str, test: &str) -> String {
    let (repository, tag) = image.rsplit_once(':').unwrap();
    let name = repository.rsplit('/').next().unwrap();
    let copy = format!("envlock-test/private-{test}-{name}:{tag}");
    let guard = one_at_a_time(&copy);
    let _guard = guard.lock();
    if image_exists(&copy) {
        return copy;
    }
    build_from_text(
        &copy,
        &format!("FROM {image}\nLABEL org.envlock.test={test}\n"),
    );
    copy
}

/// The model fixture `fixtures/models/<name>` built offline (its wheels from the harness),
/// as `variant`, after `edit` changed its build context (a retrained model, say).
pub fn model_image(name: &str, variant: &str, edit: impl FnOnce(&Path)) -> String {
    let source = root().join("fixtures/models").join(name);
    let mut hash = 0xcbf29ce484222325u64;
    hash_tree(&source, &mut hash);
    let tag = format!("envlock-test/model-{name}-{variant}:{hash:016x}-v2");
    let guard = one_at_a_time(&tag);
    let _guard = guard.lock();
    if image_exists(&tag) {
        return tag;
    }
    let flags = [
        "--build-arg",
        "PIP_OPTIONS=--no-index --find-links /app/wheels",
    ]
    .map(str::to_string);
    build_image(
        &source,
        &format!("model-{name}-{variant}"),
        &tag,
        &flags,
        None,
        |context| {
            edit(context);
            // Its own layer, so each variant has its own image id: tests that look for leftover
            // containers of one variant run alongside tests of another.
            std::fs::write(context.join(".envlock-variant"), variant).unwrap();
        },
    );
    tag
}

/// `docker save` of `image` into `dir`: the archive's path.
pub fn saved(image: &str, dir: &Path) -> PathBuf {
    let archive = dir.join("saved.tar");
    must(
        Command::new("docker")
            .args(["save", "-o"])
            .arg(&archive)
            .arg(image),
    );
    archive
}

/// The `docker save` archive of one image (`saved`) copied by skopeo to `target`
/// (`oci:DIR:TAG`, `oci-archive:FILE:TAG`), layers gzipped at level 1: the same image
/// without asking the engine to export it again.
pub fn skopeo_copy(archive: &Path, target: &str) {
    must(
        Command::new(crate::support::tool("skopeo"))
            .args(["copy", "-q", "--dest-compress-level", "1"])
            .arg(format!("docker-archive:{}", archive.display()))
            .arg(target),
    );
}

/// An image built from `dockerfile` (`FROM {base}` is the offline base) with `files` copied
/// into its context, tagged `envlock-test/{name}:` and a hash of all of it, so a second run
/// reuses it.
pub fn built(name: &str, dockerfile: &str, files: &[(&str, &Path)]) -> String {
    let mut hash = 0xcbf29ce484222325u64;
    let mut add = |bytes: &[u8]| {
        for byte in bytes {
            hash = (hash ^ u64::from(*byte)).wrapping_mul(0x100000001b3);
        }
    };
    add(dockerfile.as_bytes());
    for (inside, path) in files {
        add(inside.as_bytes());
        add(&std::fs::read(path).unwrap());
    }
    let tag = format!("envlock-test/{name}:{hash:016x}");
    let guard = one_at_a_time(&tag);
    let _guard = guard.lock();
    if image_exists(&tag) {
        return tag;
    }
    let base = base_image();
    let context = tempfile::tempdir().unwrap();
    for (inside, path) in files {
        std::fs::copy(path, context.path().join(inside)).unwrap();
    }
    std::fs::write(
        context.path().join("Dockerfile"),
        dockerfile.replace("{base}", base),
    )
    .unwrap();
    must(
        Command::new("docker")
            .args(["build", "-q", "--force-rm", "-t", &tag])
            .arg(context.path()),
    );
    tag
}

/// An image of the offline base with `pins` installed from their wheels with `--no-deps`.
pub fn image_with(name: &str, pins: &[&str]) -> String {
    let wheels: Vec<_> = pins.iter().map(|pin| wheel_for_image(pin)).collect();
    let names: Vec<String> = wheels
        .iter()
        .map(|wheel| wheel.file_name().unwrap().to_str().unwrap().to_string())
        .collect();
    let files: Vec<(&str, &Path)> = names
        .iter()
        .map(String::as_str)
        .zip(wheels.iter().map(|wheel| wheel.as_path()))
        .collect();
    let mut dockerfile = String::from("FROM {base}\n");
    for name in &names {
        dockerfile.push_str(&format!("COPY {name} /tmp/\n"));
    }
    dockerfile.push_str(&format!(
        "RUN python3 -m pip install -q --no-index --no-deps --break-system-packages /tmp/{} \
         && rm /tmp/*.whl\n",
        names.join(" /tmp/")
    ));
    built(name, &dockerfile, &files)
}

/// The wheel of `requirement` for the base image's CPython 3.11, downloaded once.
pub fn wheel_for_image(requirement: &str) -> PathBuf {
    let folder = crate::support::cache_root()
        .join("pinned-wheels")
        .join(requirement);
    let guard = one_at_a_time(&format!("wheel {requirement}"));
    let _guard = guard.lock();
    let find = |folder: &Path| {
        std::fs::read_dir(folder).ok()?.find_map(|entry| {
            let path = entry.ok()?.path();
            path.extension()
                .is_some_and(|ext| ext == "whl")
                .then_some(path)
        })
    };
    if let Some(wheel) = find(&folder) {
        return wheel;
    }
    let arch = String::from_utf8(Command::new("uname").arg("-m").output().unwrap().stdout).unwrap();
    // manylinux2014 where the project builds for it; else any the base image's glibc 2.36
    // runs (NVIDIA's CUDA 13 wheels are manylinux_2_27 only). pip takes each tag as given.
    let newer: Vec<String> = (18..=36)
        .rev()
        .map(|minor| format!("manylinux_2_{minor}"))
        .collect();
    for platforms in [vec!["manylinux2014".to_string()], newer] {
        let mut download = Command::new(crate::support::system_python());
        download
            .args(["-m", "pip", "download", "-q", "--disable-pip-version-check"])
            .args([
                "--no-deps",
                "--only-binary=:all:",
                "--python-version",
                "3.11",
            ]);
        for platform in &platforms {
            download
                .arg("--platform")
                .arg(format!("{platform}_{}", arch.trim()));
        }
        let last = platforms.len() > 1;
        let output = download
            .arg("-d")
            .arg(&folder)
            .arg(requirement)
            .output()
            .unwrap();
        if output.status.success() {
            break;
        }
        assert!(
            !last,
            "pip download {requirement}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    find(&folder).expect("pip downloaded a wheel")
}
