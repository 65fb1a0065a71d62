//! The lock's TOML form: rendering, atomic writing and checked reading.

use std::io::Write as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

use super::{Lock, SCHEMA_VERSION};
use crate::error::{Error, Result};

/// The lock as TOML. Deterministic: the same lock always gives the same bytes.
pub fn render_lock(lock: &Lock) -> String {
    toml::to_string_pretty(lock).expect("the lock model always serialises to TOML")
}

/// The folder holding `file`: its parent, or `.` for a bare file name.
pub fn containing_folder(file: &Path) -> &Path {
    match file.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    }
}

/// Writes `text` to `path`, as a user of `-o` means it:
/// - a regular file (or a new one) is replaced atomically: a temp file in the same folder,
///   then a rename, so a reader never sees half a lock and a failed run leaves no file;
///   an existing file keeps its mode, a new one gets the mode the umask gives (0644 under
///   022);
/// - a symlink is followed: its target is written (atomically) and the link kept;
/// - anything else (a device such as `/dev/null` or `/dev/stdout`, a FIFO) is written to
///   directly, never replaced.
pub fn write_lock(path: &Path, text: &str) -> Result<()> {
    write_text(path, text)
}

/// Writes `text` to `path` as [`write_lock`] does: whole or not at all.
pub fn write_text(path: &Path, text: &str) -> Result<()> {
    let write_error = |source| Error::Write {
        path: path.to_path_buf(),
        source,
    };
    let target = follow_links(path).map_err(write_error)?;
    match std::fs::metadata(&target) {
        Ok(metadata) if !metadata.is_file() => {
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .open(&target)
                .map_err(write_error)?;
            file.write_all(text.as_bytes()).map_err(write_error)
        }
        existing => {
            let mode = match existing {
                Ok(metadata) => metadata.permissions().mode() & 0o7777,
                Err(_) => 0o666 & !umask(),
            };
            replace(&target, text, mode).map_err(write_error)
        }
    }
}

/// A temp file beside `target`, written and synced, then renamed over it with `mode`.
fn replace(target: &Path, text: &str, mode: u32) -> std::io::Result<()> {
    let mut temp = tempfile::Builder::new()
        .prefix(".envlock-")
        .suffix(".tmp")
        .tempfile_in(containing_folder(target))?;
    temp.write_all(text.as_bytes())?;
    temp.as_file()
        .set_permissions(std::fs::Permissions::from_mode(mode))?;
    temp.as_file().sync_all()?;
    temp.persist(target).map_err(|error| error.error)?;
    Ok(())
}

/// `path` with symlinks followed (up to a limit, as the kernel does), even when the last
/// target does not exist yet.
fn follow_links(path: &Path) -> std::io::Result<PathBuf> {
    let mut current = path.to_path_buf();
    for _ in 0..40 {
        match std::fs::symlink_metadata(&current) {
            Ok(metadata) if metadata.file_type().is_symlink() => {
                let target = std::fs::read_link(&current)?;
                current = containing_folder(&current).join(target);
            }
            _ => return Ok(current),
        }
    }
    Err(std::io::Error::other("too many levels of symbolic links"))
}

/// The process's umask (set back at once; only the CLI's writing thread creates files then).
fn umask() -> u32 {
    // SAFETY: umask only swaps the process's file mode mask.
    let mask = unsafe { libc::umask(0o022) };
    // SAFETY: as above, restoring what was there.
    unsafe { libc::umask(mask) };
    mask
}

/// Reads and checks a lock: TOML syntax, then the schema version, then the keys, each error
/// with the file, line and column.
pub fn read_lock(path: &Path) -> Result<Lock> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse_lock(path, &text)
}

pub(crate) fn parse_lock(path: &Path, text: &str) -> Result<Lock> {
    let newer = |found: i64| Error::NewerSchema {
        path: path.to_path_buf(),
        found,
        supported: SCHEMA_VERSION,
    };
    // One parse on the way that matters (a valid lock); only a lock that fails is parsed
    // again, to say "upgrade envlock" for a newer schema rather than "missing field".
    let error = match toml::from_str::<Lock>(text) {
        Ok(lock) if lock.envlock.schema > SCHEMA_VERSION => {
            return Err(newer(i64::from(lock.envlock.schema)))
        }
        Ok(lock) => return Ok(lock),
        Err(error) => error,
    };
    let invalid = |source| Error::InvalidLock {
        path: path.to_path_buf(),
        source,
    };
    let table: toml::Table = text.parse().map_err(invalid)?;
    let header = |message: &str| Error::LockHeader {
        path: path.to_path_buf(),
        message: message.to_string(),
    };
    let schema = table
        .get("envlock")
        .ok_or_else(|| header("no `[envlock]` table; is this an envlock lock file?"))?
        .get("schema")
        .ok_or_else(|| header("no `schema` key in `[envlock]`"))?
        .as_integer()
        .ok_or_else(|| header("`[envlock] schema` is not an integer"))?;
    if schema > i64::from(SCHEMA_VERSION) {
        return Err(newer(schema));
    }
    Err(invalid(error))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error_text(text: &str) -> String {
        let error = parse_lock(Path::new("dev.lock"), text).unwrap_err();
        let mut message = error.to_string();
        if let Some(source) = std::error::Error::source(&error) {
            message.push('\n');
            message.push_str(&source.to_string());
        }
        message
    }

    const MINIMAL: &str = r#"
[envlock]
schema = 1
created-by = "envlock 0.1.0"

[source]
kind = "python"

[platform]
os = "linux"
arch = "x86_64"

[env]
"#;

    #[test]
    fn minimal_lock_reads_and_renders_back_identically() {
        let lock = parse_lock(Path::new("dev.lock"), MINIMAL).unwrap();
        let rendered = render_lock(&lock);
        assert_eq!(
            parse_lock(Path::new("again.lock"), &rendered).unwrap(),
            lock
        );
        assert_eq!(
            render_lock(&parse_lock(Path::new("x"), &rendered).unwrap()),
            rendered
        );
    }

    #[test]
    fn newer_schema_is_refused_before_keys_are_checked() {
        let message = error_text("[envlock]\nschema = 2\n[brand-new]\nx = 1\n");
        assert!(message.contains("has schema 2"), "{message}");
        assert!(message.contains("reads schema 1 at most"), "{message}");
    }

    #[test]
    fn syntax_error_names_line_and_column() {
        let message = error_text("[envlock]\nschema = 1\ncreated-by\n");
        assert!(message.contains("invalid lock `dev.lock`"), "{message}");
        assert!(message.contains("line 3, column"), "{message}");
    }

    #[test]
    fn missing_required_key_names_the_key_and_line() {
        let text = MINIMAL.replace("arch = \"x86_64\"\n", "");
        let message = error_text(&text);
        assert!(message.contains("missing field `arch`"), "{message}");
        assert!(message.contains("line "), "{message}");
    }

    #[test]
    fn file_without_header_is_named_as_such() {
        let message = error_text("[tool.poetry]\nname = \"x\"\n");
        assert!(message.contains("no `[envlock]` table"), "{message}");
    }

    proptest::proptest! {
        #[test]
        fn any_text_is_a_lock_or_an_error(text in ".{0,300}") {
            let _ = parse_lock(Path::new("x.lock"), &text);
        }

        #[test]
        fn a_damaged_lock_is_a_lock_or_an_error(cut in 0usize..400, insert in ".{0,12}") {
            let mut text = MINIMAL.to_string();
            let at = text.char_indices().map(|(i, _)| i).nth(cut % text.chars().count()).unwrap_or(0);
            text.insert_str(at, &insert);
            let _ = parse_lock(Path::new("x.lock"), &text);
        }
    }
}
