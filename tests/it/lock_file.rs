//! The lock file: deterministic bytes, atomic writes, and a committed JSON Schema that
//! matches the Rust types.

use crate::support::*;

#[test]
fn schema_file_is_up_to_date() {
    assert_schema_current("envlock.lock.schema.json", &envlock::lock::json_schema());
}

#[test]
fn same_runtime_gives_byte_identical_locks_and_writes_atomically() {
    let python = ml_venv();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("weights.bin"), vec![7u8; 3 << 20]).unwrap();
    let mut outputs = Vec::new();
    for name in ["a.lock", "b.lock"] {
        let run = run(envlock()
            .args(["snapshot", "--model", "weights.bin", "--python"])
            .arg(&python)
            .arg("-o")
            .arg(name)
            .current_dir(dir.path()));
        assert_eq!(run.code, 0, "{}", run.stderr);
        assert!(run.stdout.is_empty(), "with -o nothing goes to stdout");
        assert!(
            run.stderr.contains(&format!("into `{name}`")),
            "{}",
            run.stderr
        );
        outputs.push(std::fs::read(dir.path().join(name)).unwrap());
    }
    assert_eq!(outputs[0], outputs[1]);
    let files: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(files.len(), 3, "no temp files left: {files:?}");

    // The file reads back through envlock's own checked reader.
    let lock = envlock::lock::read_lock(&dir.path().join("a.lock")).unwrap();
    assert!(lock
        .packages
        .windows(2)
        .all(|pair| pair[0].name < pair[1].name));
    assert_eq!(
        envlock::lock::render_lock(&lock).as_bytes(),
        &outputs[0][..]
    );
}

#[test]
fn newer_schema_is_refused_with_the_file_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("future.lock");
    std::fs::write(&path, "[envlock]\nschema = 9\n").unwrap();
    let error = envlock::lock::read_lock(&path).unwrap_err();
    assert!(
        error.to_string().contains("future.lock` has schema 9"),
        "{error}"
    );
    assert!(error.hint().unwrap().contains("upgrade envlock"));
}

/// `-o` onto a device, a FIFO, a symlink, a new and an existing file, as root inside a
/// throwaway container (never on the test machine's own `/dev/null`).
#[cfg_attr(not(envlock_docker), ignore = "needs a Docker engine")]
#[test]
fn output_writes_through_devices_fifos_and_links() {
    crate::docker::need_engine();
    let script = r#"
set -e
umask 022
E=/envlock
$E snapshot --python python3 -o /dev/null 2>/dev/null
test -c /dev/null && echo device-kept
mkfifo /tmp/fifo
cat /tmp/fifo > /tmp/from-fifo & reader=$!
$E snapshot --python python3 -o /tmp/fifo 2>/dev/null
wait $reader
test -p /tmp/fifo && grep -q '^schema = 1' /tmp/from-fifo && echo fifo-written
mkdir /tmp/locks
ln -s locks/real.lock /tmp/link.lock
$E snapshot --python python3 -o /tmp/link.lock 2>/dev/null
test -L /tmp/link.lock && grep -q '^schema = 1' /tmp/locks/real.lock && echo link-kept
$E snapshot --python python3 -o /tmp/new.lock 2>/dev/null
echo "new $(stat -c %a /tmp/new.lock)"
touch /tmp/old.lock
chmod 640 /tmp/old.lock
$E snapshot --python python3 -o /tmp/old.lock 2>/dev/null
echo "old $(stat -c %a /tmp/old.lock)"
ls -a /tmp /tmp/locks | grep -c '^.envlock-' || true
"#;
    let output = std::process::Command::new("docker")
        .args(["run", "--rm", "--network", "none", "-v"])
        .arg(format!("{}:/envlock:ro", env!("CARGO_BIN_EXE_envlock")))
        .args([crate::docker::base_image(), "sh", "-c", script])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines,
        [
            "device-kept",
            "fifo-written",
            "link-kept",
            "new 644",
            "old 640",
            "0"
        ]
    );
}
