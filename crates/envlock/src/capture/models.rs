//! Hashing model files and folders on the host (an image's models are hashed from its
//! archive stream, `image/models.rs`, into the same digests).
//!
//! A folder is walked in sorted order; a symlink is followed while its target stays inside the
//! folder, and recorded (not followed) when it leaves it, so hashing never reads outside what
//! the user named. Files are read in large blocks, on as many threads as there are cores when
//! there are several files.

use std::cell::RefCell;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use crate::error::{Error, Result};
use crate::lock::{Model, ModelFile, ModelKind, Sha256, WrittenBy};
use crate::stop::Stop;
use envlock_model::{self as model, Facts};

/// Told how many bytes there are to hash, then how many more were hashed.
pub trait Progress: Sync {
    /// The total, once known.
    fn start(&self, total_bytes: u64);
    /// More bytes hashed.
    fn advance(&self, bytes: u64);
}

/// No progress reporting.
pub(crate) struct Silent;

impl Progress for Silent {
    fn start(&self, _: u64) {}
    fn advance(&self, _: u64) {}
}

/// Reads of this size keep the hash fed without holding much memory.
pub(crate) const BLOCK: usize = 1 << 20;

/// Hashes each model, in order; each comes as (the path as given, where it is on disk).
/// A stop request ends the reading at the next block.
pub(crate) fn hash_models(
    models: &[(String, PathBuf)],
    progress: &dyn Progress,
    stop: &Stop,
) -> Result<Vec<Model>> {
    let plans = models
        .iter()
        .map(|(given, path)| plan(given, path))
        .collect::<Result<Vec<_>>>()?;
    let jobs: Vec<(&Path, u64)> = plans
        .iter()
        .flat_map(|plan| plan.entries.iter())
        .filter_map(|entry| match &entry.content {
            Content::File { path, size } => Some((path.as_path(), *size)),
            Content::Link(_) => None,
        })
        .collect();
    progress.start(jobs.iter().map(|(_, size)| size).sum());
    let mut hashes = hash_files(&jobs, progress, stop)?.into_iter();
    Ok(plans
        .into_iter()
        .map(|plan| plan.finish(&mut hashes))
        .collect())
}

/// What one model path holds, before hashing.
struct Plan {
    given: String,
    kind: ModelKind,
    entries: Vec<PlannedFile>,
}

struct PlannedFile {
    /// `/`-separated, relative to the model folder; empty for a single-file model.
    relative: String,
    content: Content,
}

enum Content {
    File { path: PathBuf, size: u64 },
    Link(String),
}

fn plan(given: &str, path: &Path) -> Result<Plan> {
    let unreadable = |source| Error::Model {
        path: path.to_path_buf(),
        source,
    };
    let metadata = std::fs::metadata(path).map_err(unreadable)?;
    if !metadata.is_dir() {
        // Fail now, not after hashing the others, when the file cannot be opened.
        std::fs::File::open(path).map_err(unreadable)?;
        return Ok(Plan {
            given: given.to_string(),
            kind: ModelKind::File,
            entries: vec![PlannedFile {
                relative: String::new(),
                content: Content::File {
                    path: path.to_path_buf(),
                    size: metadata.len(),
                },
            }],
        });
    }
    let root = path.canonicalize().map_err(unreadable)?;
    let leaving = RefCell::new(Vec::new());
    // A link that cannot be followed for another reason than leading nowhere (a permission
    // error) is a failed read, not a link that leaves the model.
    let unfollowed = RefCell::new(None);
    let mut entries = Vec::new();
    let walk = walkdir::WalkDir::new(path)
        .follow_links(true)
        .into_iter()
        .filter_entry(|entry| {
            let stays = !entry.path_is_symlink()
                || match entry.path().canonicalize() {
                    Ok(target) => target.starts_with(&root),
                    // Leads nowhere (absent, through a file, round in a circle): a link
                    // that leaves the model, recorded with its target.
                    Err(error)
                        if error.kind() == std::io::ErrorKind::NotFound
                            || matches!(
                                error.raw_os_error(),
                                Some(libc::ENOTDIR | libc::ELOOP)
                            ) =>
                    {
                        false
                    }
                    Err(error) => {
                        unfollowed
                            .borrow_mut()
                            .get_or_insert((entry.path().to_path_buf(), error));
                        false
                    }
                };
            if !stays {
                leaving.borrow_mut().push(entry.path().to_path_buf());
            }
            stays
        });
    for entry in walk {
        let entry = entry.map_err(|error| walk_error(path, error))?;
        if entry.file_type().is_file() {
            let size = entry.metadata().map_err(|e| walk_error(path, e))?.len();
            entries.push(PlannedFile {
                relative: relative(path, entry.path()),
                content: Content::File {
                    path: entry.path().to_path_buf(),
                    size,
                },
            });
        }
    }
    if let Some((link, source)) = unfollowed.into_inner() {
        return Err(Error::Model { path: link, source });
    }
    for link in leaving.into_inner() {
        let target = std::fs::read_link(&link).map_err(|source| Error::Model {
            path: link.clone(),
            source,
        })?;
        entries.push(PlannedFile {
            relative: relative(path, &link),
            content: Content::Link(target.to_string_lossy().into_owned()),
        });
    }
    // Sorted by path bytes, as `LC_ALL=C sort` would, so the manifest can be rebuilt by hand.
    entries.sort_by(|a, b| a.relative.cmp(&b.relative));
    Ok(Plan {
        given: given.to_string(),
        kind: ModelKind::Directory,
        entries,
    })
}

fn walk_error(root: &Path, error: walkdir::Error) -> Error {
    if let Some(ancestor) = error.loop_ancestor() {
        return Error::ModelSymlinkLoop {
            path: error.path().unwrap_or(root).to_path_buf(),
            ancestor: ancestor.to_path_buf(),
        };
    }
    let path = error.path().unwrap_or(root).to_path_buf();
    Error::Model {
        path,
        source: error.into(),
    }
}

fn relative(root: &Path, path: &Path) -> String {
    let inside = path.strip_prefix(root).unwrap_or(path);
    inside
        .components()
        .map(|part| part.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

impl Plan {
    fn finish(self, hashes: &mut impl Iterator<Item = (String, Facts)>) -> Model {
        let mut files = Vec::with_capacity(self.entries.len());
        let mut said = Vec::new();
        for entry in self.entries {
            files.push(match entry.content {
                Content::File { size, .. } => {
                    let (sha256, facts) = hashes.next().expect("one hash a file");
                    let file = file_entry(entry.relative.clone(), sha256, size, &facts);
                    said.push((entry.relative, facts));
                    file
                }
                Content::Link(target) => ModelFile {
                    path: entry.relative,
                    sha256: None,
                    size: 0,
                    link: Some(target),
                    ..ModelFile::default()
                },
            });
        }
        let size = files.iter().map(|file| file.size).sum();
        if self.kind == ModelKind::File {
            let file = files.pop().expect("a file model has one entry");
            let facts = said.pop().map(|(_, facts)| facts).unwrap_or_default();
            return described(
                self.given,
                ModelKind::File,
                file.sha256.expect("a file has a hash"),
                size,
                Vec::new(),
                facts,
            );
        }
        let sha256 = manifest_digest(&files);
        described(
            self.given,
            ModelKind::Directory,
            sha256,
            size,
            files,
            model::merge(said),
        )
    }
}

/// A file of a model folder, with what its bytes say.
pub(crate) fn file_entry(path: String, sha256: String, size: u64, facts: &Facts) -> ModelFile {
    ModelFile {
        path,
        sha256: Some(sha256),
        size,
        link: None,
        format: Some(facts.format),
        written_by: written_by(facts),
        imports: facts.imports.iter().cloned().collect(),
        unsafe_calls: facts.unsafe_calls.iter().cloned().collect(),
    }
}

fn written_by(facts: &Facts) -> Vec<WrittenBy> {
    (facts.written_by.iter())
        .map(|(name, version)| WrittenBy {
            name: name.clone(),
            version: version.clone(),
        })
        .collect()
}

/// A model entry of the lock, with what its bytes say (a folder: its files' facts merged).
pub(crate) fn described(
    path: String,
    kind: ModelKind,
    sha256: String,
    size: u64,
    files: Vec<ModelFile>,
    facts: Facts,
) -> Model {
    Model {
        path,
        kind,
        sha256,
        size,
        format: Some(facts.format),
        written_by: written_by(&facts),
        imports: facts.imports.into_iter().collect(),
        unsafe_calls: facts.unsafe_calls.into_iter().collect(),
        unsafe_where: facts.unsafe_where,
        not_importable: Vec::new(),
        files,
        layer: None,
    }
}

/// The digest of a folder: sha256 of `<hex>  <path>\n` lines (see [`Model::sha256`]).
pub(crate) fn manifest_digest(files: &[ModelFile]) -> String {
    let mut digest = Sha256::default();
    for file in files {
        let content = match (&file.sha256, &file.link) {
            (Some(hash), _) => Sha256::hex(hash).to_string(),
            (None, Some(target)) => format!("link:{target}"),
            (None, None) => String::new(),
        };
        digest.update(format!("{content}  {}\n", file.path));
    }
    digest.finish()
}

/// A file's digest and what its bytes say, or why it could not be read.
type Hashed = Result<(String, Facts)>;

/// Hashes `jobs` on up to as many threads as there are cores; results in job order.
fn hash_files(
    jobs: &[(&Path, u64)],
    progress: &dyn Progress,
    stop: &Stop,
) -> Result<Vec<(String, Facts)>> {
    let workers = std::thread::available_parallelism()
        .map_or(1, usize::from)
        .min(jobs.len())
        .max(1);
    let next = AtomicUsize::new(0);
    let results: Vec<Mutex<Option<Hashed>>> = jobs.iter().map(|_| Mutex::new(None)).collect();
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                let mut buffer = vec![0u8; BLOCK];
                loop {
                    let index = next.fetch_add(1, Ordering::Relaxed);
                    let Some((path, size)) = jobs.get(index) else {
                        break;
                    };
                    let hash = hash_file(path, *size, &mut buffer, progress, stop);
                    *results[index].lock().expect("no worker panics") = Some(hash);
                }
            });
        }
    });
    results
        .into_iter()
        .map(|slot| {
            slot.into_inner()
                .expect("no worker panics")
                .expect("every job ran")
        })
        .collect()
}

/// The `sha256:` digest of a file and what its bytes say, read once in `buffer`-sized
/// blocks.
fn hash_file(
    path: &Path,
    size: u64,
    buffer: &mut [u8],
    progress: &dyn Progress,
    stop: &Stop,
) -> Result<(String, Facts)> {
    stop.check()?;
    let unreadable = |source| Error::Model {
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::File::open(path).map_err(unreadable)?;
    let mut reader = Stoppable { inner: file, stop };
    let name = path
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    let read = read_model_file(&mut reader, buffer, progress, size, &name).map_err(unreadable)?;
    Ok((read.sha256, read.facts))
}

/// A reader that fails once the run is asked to stop, so a large model is not read to its
/// end first.
struct Stoppable<'a, R> {
    inner: R,
    stop: &'a Stop,
}

impl<R: Read> Read for Stoppable<'_, R> {
    fn read(&mut self, buffer: &mut [u8]) -> std::io::Result<usize> {
        if self.stop.requested().is_some() {
            return Err(std::io::Error::other("stopped by a signal"));
        }
        self.inner.read(buffer)
    }
}

/// A model file, read once: its digest and length, and what its bytes say.
pub(crate) struct ModelBytes {
    pub(crate) sha256: String,
    pub(crate) size: u64,
    pub(crate) facts: Facts,
}

/// Reads a model file from `reader` once, in `buffer`-sized blocks: every byte is hashed as
/// the model reader reads it, and what it leaves is read after it. Shared by files on the
/// host and files streamed out of an image; `size` is what the file's stat or tar header
/// says, `name` its file name. A failed read is an error, however far the model reader got.
pub(crate) fn read_model_file(
    reader: &mut dyn Read,
    buffer: &mut [u8],
    progress: &dyn Progress,
    size: u64,
    name: &str,
) -> std::io::Result<ModelBytes> {
    let mut hashing = Hashing {
        inner: reader,
        digest: Sha256::default(),
        size: 0,
        progress,
        failed: None,
    };
    let facts = model::read(&mut hashing, size, name);
    while hashing.failed.is_none() {
        match hashing.read(buffer) {
            Ok(0) => break,
            Ok(_) => {}
            Err(_) => break,
        }
    }
    if let Some(error) = hashing.failed {
        return Err(error);
    }
    Ok(ModelBytes {
        sha256: hashing.digest.finish(),
        size: hashing.size,
        facts,
    })
}

/// A reader that hashes and counts what passes through it, and keeps its first error for
/// the caller (the model reader only sees that its stream ended).
struct Hashing<'a> {
    inner: &'a mut dyn Read,
    digest: Sha256,
    size: u64,
    progress: &'a dyn Progress,
    failed: Option<std::io::Error>,
}

impl Read for Hashing<'_> {
    fn read(&mut self, buffer: &mut [u8]) -> std::io::Result<usize> {
        if self.failed.is_some() {
            return Err(std::io::Error::other("the stream failed"));
        }
        loop {
            match self.inner.read(buffer) {
                Ok(read) => {
                    self.digest.update(&buffer[..read]);
                    self.size += read as u64;
                    self.progress.advance(read as u64);
                    return Ok(read);
                }
                Err(error) if error.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(error) => {
                    let copy = std::io::Error::new(error.kind(), error.to_string());
                    self.failed = Some(error);
                    return Err(copy);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sha(bytes: &[u8]) -> String {
        Sha256::of(bytes)
    }

    #[test]
    fn folder_manifest_matches_sha256sum_format() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        std::fs::write(dir.path().join("b.bin"), b"bee").unwrap();
        std::fs::write(dir.path().join("sub/a.txt"), b"ay").unwrap();
        std::fs::write(dir.path().join("sub.txt"), b"").unwrap();
        let models =
            hash_models(&[(".".into(), dir.path().into())], &Silent, &Stop::new()).unwrap();
        let model = &models[0];
        let paths: Vec<&str> = model.files.iter().map(|f| f.path.as_str()).collect();
        // Byte order: '.' (0x2e) sorts before '/' (0x2f).
        assert_eq!(paths, ["b.bin", "sub.txt", "sub/a.txt"]);
        let manifest = format!(
            "{}  b.bin\n{}  sub.txt\n{}  sub/a.txt\n",
            &sha(b"bee")[7..],
            &sha(b"")[7..],
            &sha(b"ay")[7..]
        );
        assert_eq!(model.sha256, sha(manifest.as_bytes()));
        assert_eq!(model.size, 5);
    }

    #[test]
    fn links_leaving_the_folder_are_recorded_not_followed() {
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret"), b"do not read").unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("weights"), b"w").unwrap();
        std::os::unix::fs::symlink(outside.path().join("secret"), dir.path().join("out")).unwrap();
        std::os::unix::fs::symlink("weights", dir.path().join("alias")).unwrap();
        let model = hash_models(&[(".".into(), dir.path().into())], &Silent, &Stop::new())
            .unwrap()
            .remove(0);
        let by_path = |p: &str| model.files.iter().find(|f| f.path == p).unwrap().clone();
        assert_eq!(by_path("alias").sha256, Some(sha(b"w")));
        assert_eq!(by_path("out").sha256, None);
        assert_eq!(
            by_path("out").link.as_deref(),
            Some(outside.path().join("secret").to_str().unwrap())
        );
        assert_eq!(model.size, 2);
    }

    #[test]
    fn many_files_hash_in_order_on_several_threads() {
        let dir = tempfile::tempdir().unwrap();
        for index in 0..40 {
            std::fs::write(dir.path().join(format!("f{index:02}")), index.to_string()).unwrap();
        }
        let model = hash_models(&[(".".into(), dir.path().into())], &Silent, &Stop::new())
            .unwrap()
            .remove(0);
        for (index, file) in model.files.iter().enumerate() {
            assert_eq!(file.path, format!("f{index:02}"));
            assert_eq!(file.sha256, Some(sha(index.to_string().as_bytes())));
        }
    }
}
