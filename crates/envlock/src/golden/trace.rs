//! What a golden run really loaded. envlock's `sitecustomize.py` goes first on the run's
//! `PYTHONPATH` (after it, the runtime's own, whose `sitecustomize` it runs in turn); each
//! Python process it starts in writes a file of its own into the trace folder, as modules
//! load: `p PID`, then `m MODULE` per import and `l PATH` per shared object newly mapped.
//! Here those files are read back (bounded: they come from the runtime) and the modules
//! mapped to distributions through the runtime's RECORDs.

use std::collections::BTreeSet;
use std::io::Read;
use std::path::Path;

use crate::capture::read::imports::Modules;
use crate::lock::{Loaded, Numerics};

/// The tracer, put first on `PYTHONPATH` under this name.
pub(crate) const SITECUSTOMIZE: &str = include_str!("sitecustomize.py");

/// The variable that names the folder the tracer writes into.
pub(crate) const VARIABLE: &str = "ENVLOCK_TRACE";

/// At most this many bytes of trace files are read per run, and this many files.
const BYTES_LIMIT: u64 = 64 << 20;
const FILES_LIMIT: usize = 4096;

/// What the traced processes of one run loaded.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Trace {
    /// How many processes the tracer ran in.
    pub(crate) processes: usize,
    /// Every module imported after start-up.
    pub(crate) modules: BTreeSet<String>,
    /// Every shared object mapped.
    pub(crate) libraries: BTreeSet<String>,
    /// Trace files and bytes read so far, and whether some were left unread (past the
    /// limits): a trace cut short is no loaded set.
    files: usize,
    bytes: u64,
    truncated: bool,
}

/// One run's trace, or why it has none.
pub(crate) type Traced = Result<Trace, Untraced>;

/// Why a run has no trace, so no loaded set: said in the report's `loaded.unknown`.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Untraced {
    /// Past the bounds on trace files: a trace cut short is no loaded set.
    #[error(
        "its trace was cut short (envlock reads at most {FILES_LIMIT} trace files and {} MiB)",
        BYTES_LIMIT >> 20
    )]
    CutShort,
    /// The case's container lost its trace folder before it was read.
    #[error("its trace folder is gone from the container")]
    Gone,
    /// The trace folder could not be read.
    #[error("its trace could not be read: {0}")]
    Unreadable(#[source] std::io::Error),
    /// The command line runs Python with a flag that skips `sitecustomize`.
    #[error("the command runs Python with `-{0}`, which skips `sitecustomize` (how envlock traces a run)")]
    SkipsSite(char),
    /// The run was not traced (a timed run, or a placeholder until the trace is read).
    #[error("not traced")]
    NotTraced,
    /// No process loaded the tracer, and the command line does not say why.
    #[error("no Python process of the run loaded envlock's tracer: the command is not Python, or it starts Python without site customisation (`-I`, `-E`, `-S`) or without the environment envlock gave it")]
    NoTracer,
}

impl Trace {
    /// Adds one process's file; lines that are not the tracer's are skipped. Past the
    /// limits, the trace is marked cut short instead.
    pub(crate) fn add_file(&mut self, bytes: &[u8]) {
        self.files += 1;
        self.bytes += bytes.len() as u64;
        if self.files > FILES_LIMIT || self.bytes > BYTES_LIMIT {
            self.truncated = true;
            return;
        }
        let text = String::from_utf8_lossy(bytes);
        let mut started = false;
        for line in text.lines() {
            match line.split_once(' ') {
                Some(("p", pid)) if !started && pid.parse::<u32>().is_ok() => started = true,
                Some(("m", module)) if started && is_module(module) => {
                    self.modules.insert(module.to_string());
                }
                Some(("l", path)) if started && path.starts_with('/') => {
                    let path = path.strip_suffix(" (deleted)").unwrap_or(path);
                    self.libraries.insert(path.to_string());
                }
                _ => {}
            }
        }
        self.processes += usize::from(started);
    }

    /// Adds the trace files of a tar stream (the trace folder read out of a container).
    pub(crate) fn add_tar(&mut self, tar: &mut dyn Read) -> std::io::Result<()> {
        let mut archive = tar::Archive::new(tar);
        for entry in archive.entries()? {
            let mut entry = entry?;
            let trace_file =
                entry.header().entry_type().is_file() && entry.path_bytes().ends_with(b".trace");
            if !trace_file {
                continue;
            }
            let mut bytes = Vec::new();
            (&mut entry).take(self.room()).read_to_end(&mut bytes)?;
            self.add_file(&bytes);
            if self.truncated {
                break;
            }
        }
        Ok(())
    }

    /// Adds the trace files in a folder on this machine.
    pub(crate) fn add_folder(&mut self, folder: &Path) -> std::io::Result<()> {
        for entry in std::fs::read_dir(folder)? {
            let path = entry?.path();
            if path
                .extension()
                .is_none_or(|extension| extension != "trace")
            {
                continue;
            }
            let mut bytes = Vec::new();
            std::fs::File::open(&path)?
                .take(self.room())
                .read_to_end(&mut bytes)?;
            self.add_file(&bytes);
            if self.truncated {
                break;
            }
        }
        Ok(())
    }

    /// How much more may be read: one byte past the limit tells a file that is too large.
    fn room(&self) -> u64 {
        (BYTES_LIMIT + 1).saturating_sub(self.bytes)
    }

    /// Marks the trace as cut short (an answer that did not arrive whole).
    pub(crate) fn cut_short(&mut self) {
        self.truncated = true;
    }

    /// This run's trace, or why there is none: no process ran the tracer.
    pub(crate) fn or_why(self, command: &[String]) -> Traced {
        if self.truncated {
            Err(Untraced::CutShort)
        } else if self.processes == 0 {
            Err(untraced(command))
        } else {
            Ok(self)
        }
    }
}

/// A trace folder on this machine, for a local run: the tracer, and `out/` for its files.
pub(crate) struct HostTrace {
    folder: tempfile::TempDir,
}

impl HostTrace {
    /// A fresh folder with the tracer in it.
    pub(crate) fn new() -> std::io::Result<HostTrace> {
        let folder = tempfile::Builder::new()
            .prefix("envlock-trace-")
            .tempdir()?;
        std::fs::write(folder.path().join("sitecustomize.py"), SITECUSTOMIZE)?;
        std::fs::create_dir(folder.path().join("out"))?;
        Ok(HostTrace { folder })
    }

    /// The variables that trace a run: the tracer first on `PYTHONPATH`, before `existing`.
    pub(crate) fn env(
        &self,
        existing: Option<&std::ffi::OsStr>,
    ) -> [(String, std::ffi::OsString); 2] {
        let mut path = self.folder.path().as_os_str().to_os_string();
        if let Some(existing) = existing {
            path.push(":");
            path.push(existing);
        }
        [
            ("PYTHONPATH".to_string(), path),
            (
                VARIABLE.to_string(),
                self.folder.path().join("out").into_os_string(),
            ),
        ]
    }

    /// What the run's processes wrote, or why there is nothing.
    pub(crate) fn read(&self, command: &[String]) -> Traced {
        let mut trace = Trace::default();
        trace
            .add_folder(&self.folder.path().join("out"))
            .map_err(Untraced::Unreadable)?;
        trace.or_why(command)
    }
}

/// A dotted Python module name.
fn is_module(name: &str) -> bool {
    name.len() <= 512
        && name.split('.').all(|part| {
            part.chars()
                .next()
                .is_some_and(|c| c.is_alphabetic() || c == '_')
                && part.chars().all(|c| c.is_alphanumeric() || c == '_')
        })
}

/// Why a command's runs left no trace: the Python flag that skips `sitecustomize`, when its
/// command line shows one; else the ways that can happen.
pub(crate) fn untraced(command: &[String]) -> Untraced {
    let program = command.first().map(String::as_str).unwrap_or_default();
    let name = program.rsplit('/').next().unwrap_or_default();
    if name.starts_with("python") {
        let mut args = command[1..].iter();
        while let Some(arg) = args.next() {
            if matches!(arg.as_str(), "-c" | "-m" | "-") || !arg.starts_with('-') {
                break;
            }
            if matches!(arg.as_str(), "-W" | "-X") {
                args.next();
                continue;
            }
            if arg.starts_with("--") {
                continue;
            }
            let flags = arg[1..]
                .split(['W', 'X', 'c', 'm'])
                .next()
                .unwrap_or_default();
            if let Some(flag) = flags.chars().find(|flag| matches!(flag, 'I' | 'E' | 'S')) {
                return Untraced::SkipsSite(flag);
            }
        }
    }
    Untraced::NoTracer
}

/// What a case loaded over its runs, its modules mapped to distributions; unknown when one
/// run left no trace.
pub(crate) fn loaded(runs: impl IntoIterator<Item = Traced>, modules: &Modules) -> Loaded {
    let mut all = Trace::default();
    for run in runs {
        match run {
            Ok(trace) => {
                all.modules.extend(trace.modules);
                all.libraries.extend(trace.libraries);
            }
            Err(why) => return Loaded::unknown(why.to_string()),
        }
    }
    let distributions: BTreeSet<&str> = all
        .modules
        .iter()
        .filter_map(|module| modules.owner(module))
        .collect();
    Loaded {
        distributions: distributions.into_iter().map(str::to_string).collect(),
        libraries: all.libraries.into_iter().collect(),
        unknown: None,
    }
}

/// Marks the numeric libraries a traced run mapped (`loaded = true`): the same path, or,
/// for a library whose file name no other library of the lock has, the same file name (the
/// kernel names a file by its real path; a lock may name it through a link).
pub(crate) fn mark_mapped<'a>(numerics: &mut Numerics, runs: impl IntoIterator<Item = &'a Loaded>) {
    let mut paths = BTreeSet::new();
    let mut names = BTreeSet::new();
    for path in runs.into_iter().flat_map(|loaded| &loaded.libraries) {
        paths.insert(path.as_str());
        names.insert(file_name(path));
    }
    let mut counts = std::collections::BTreeMap::new();
    for library in &numerics.libraries {
        *counts
            .entry(file_name(&library.path).to_string())
            .or_insert(0) += 1;
    }
    for library in &mut numerics.libraries {
        let name = file_name(&library.path);
        let unique = counts.get(name) == Some(&1);
        library.loaded |= paths.contains(library.path.as_str()) || (unique && names.contains(name));
    }
}

fn file_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// For the fuzz targets (`src/fuzzing.rs`): a trace file, and the loaded set it gives.
pub(crate) fn fuzz(bytes: &[u8]) {
    let mut trace = Trace::default();
    trace.add_file(bytes);
    let _ = loaded([trace.or_why(&[])], &Modules::default());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trace_files_give_modules_and_libraries_and_junk_is_skipped() {
        let mut trace = Trace::default();
        trace.add_file(b"p 12\nm numpy\nm numpy.core._multiarray_umath\nl /v/numpy.libs/libopenblas.so\nm ../etc\nl relative.so\nx y\n");
        trace.add_file(b"m yaml\n");
        trace.add_file(b"p 13\nl /lib/libgone.so (deleted)\n");
        assert_eq!(trace.processes, 2);
        let modules: Vec<&str> = trace.modules.iter().map(String::as_str).collect();
        assert_eq!(modules, ["numpy", "numpy.core._multiarray_umath"]);
        let libraries: Vec<&str> = trace.libraries.iter().map(String::as_str).collect();
        assert_eq!(
            libraries,
            ["/lib/libgone.so", "/v/numpy.libs/libopenblas.so"]
        );
    }

    #[test]
    fn a_run_without_a_trace_says_why() {
        let argv = |args: &[&str]| args.iter().map(|a| a.to_string()).collect::<Vec<_>>();
        for (command, flag) in [
            (argv(&["python3", "-I", "predict.py"]), Some('I')),
            (
                argv(&["/usr/bin/python3.11", "-BE", "predict.py"]),
                Some('E'),
            ),
            (argv(&["python", "-X", "dev", "-S", "x.py"]), Some('S')),
            (argv(&["python3", "-c", "import x", "-I"]), None),
            (argv(&["python3", "predict.py", "-I"]), None),
            (argv(&["./predict"]), None),
        ] {
            let why = untraced(&command).to_string();
            match flag {
                Some(flag) => assert!(why.contains(&format!("`-{flag}`")), "{command:?}: {why}"),
                None => assert!(why.starts_with("no Python process"), "{command:?}: {why}"),
            }
        }
        let command = argv(&["python3", "-I", "p.py"]);
        let loaded = loaded(
            [Ok(Trace::default()), Trace::default().or_why(&command)],
            &Modules::default(),
        );
        assert!(loaded.unknown.unwrap().contains("`-I`"));
        assert!(loaded.distributions.is_empty());
    }

    #[test]
    fn a_trace_past_the_limits_is_cut_short_never_complete() {
        let mut trace = Trace::default();
        for pid in 0..=FILES_LIMIT {
            trace.add_file(format!("p {pid}\nm numpy\n").as_bytes());
        }
        let why = trace.or_why(&[]).unwrap_err().to_string();
        assert!(why.contains("cut short"), "{why}");
        let mut big = Trace::default();
        big.add_file(&vec![b'm'; BYTES_LIMIT as usize + 1]);
        assert!(big.or_why(&[]).is_err());
    }

    #[test]
    fn modules_map_to_their_distributions() {
        let mut modules = Modules::default();
        modules.add_record(b"numpy/__init__.py,,\nnumpy/core/__init__.py,,\n", "numpy");
        modules.add_record(b"yaml/__init__.py,,\n", "pyyaml");
        let mut first = Trace::default();
        first.add_file(b"p 1\nm numpy\nm numpy.core\nm json\nm predict_helpers\n");
        let mut second = Trace::default();
        second.add_file(b"p 2\nm numpy\nl /x/libm.so.6\n");
        let loaded = loaded([Ok(first), Ok(second)], &modules);
        assert_eq!(loaded.distributions, ["numpy"]);
        assert_eq!(loaded.libraries, ["/x/libm.so.6"]);
        assert_eq!(loaded.unknown, None);
    }
}
