//! Whether the modules a model's pickles name can be imported in a runtime, found from the
//! files its import system would find, never by version rules (numpy 1.26 ships a
//! `numpy._core` shim that numpy 2 pickles need; 1.24 has none): the winning distributions'
//! RECORDs first, then the `sys.path` folders themselves (code that no RECORD lists, as an
//! app's own package in its WORKDIR), and the standard library of the runtime's Python.

use std::collections::{BTreeMap, BTreeSet};

use crate::capture::fs::{self, Files, Kind, ReadError};
use crate::lock::Model;

/// The modules the winning distributions install, from their RECORDs: `numpy._core`,
/// `numpy._core.multiarray`, and every package folder on the way; with, for each module a
/// file defines, the distribution that installs it (what a traced run's imports map to).
#[derive(Debug, Default, Clone)]
pub(crate) struct Modules {
    all: BTreeSet<String>,
    owners: BTreeMap<String, String>,
}

impl Modules {
    /// Adds `other`'s modules; a module another distribution already installs keeps its
    /// first owner (the earlier on `sys.path` wins).
    pub(crate) fn extend(&mut self, other: Modules) {
        self.all.extend(other.all);
        for (module, owner) in other.owners {
            self.owners.entry(module).or_insert(owner);
        }
    }

    /// The distribution whose files define `module` (`numpy.core._multiarray_umath`), else
    /// the nearest package above it that one does (`six.moves` is `six`'s); `None` for
    /// the standard library, the app's own code and namespace packages.
    pub(crate) fn owner(&self, module: &str) -> Option<&str> {
        let mut name = module;
        loop {
            if let Some(owner) = self.owners.get(name) {
                return Some(owner);
            }
            name = name.rsplit_once('.')?.0;
        }
    }

    /// Adds the top-level modules an egg-info's `top_level.txt` of distribution `owner`
    /// declares (one per line; a nested one as `a/b`).
    pub(crate) fn add_top_level(&mut self, listed: &[u8], owner: &str) {
        for line in String::from_utf8_lossy(listed).lines() {
            let module = line.trim().replace('/', ".");
            let valid = !module.is_empty()
                && module.split('.').all(|part| {
                    part.chars()
                        .next()
                        .is_some_and(|c| c.is_alphabetic() || c == '_')
                        && part.chars().all(|c| c.is_alphanumeric() || c == '_')
                });
            if valid {
                self.owners
                    .entry(module.clone())
                    .or_insert_with(|| owner.to_string());
                self.all.insert(module);
            }
        }
    }

    /// Adds the modules a RECORD of distribution `owner` lists (paths relative to its site
    /// folder).
    pub(crate) fn add_record(&mut self, record: &[u8], owner: &str) {
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .from_reader(record);
        let mut row = csv::ByteRecord::new();
        while reader.read_byte_record(&mut row).unwrap_or(false) {
            let Some(path) = row.get(0).and_then(|path| std::str::from_utf8(path).ok()) else {
                continue;
            };
            if let Some(module) = module_of(path) {
                self.owners
                    .entry(module.clone())
                    .or_insert_with(|| owner.to_string());
                let mut parts: Vec<&str> = module.split('.').collect();
                while !parts.is_empty() {
                    self.all.insert(parts.join("."));
                    parts.pop();
                }
            }
        }
    }
}

/// The module a file installs (`numpy/_core/multiarray.py` -> `numpy._core.multiarray`,
/// `numpy/_core/__init__.py` -> `numpy._core`, an extension `x.cpython-311-….so` -> `x`);
/// `None` for what is no module (metadata, scripts outside the site folder, data files).
fn module_of(path: &str) -> Option<String> {
    if path.starts_with('/') || path.split('/').any(|part| part == ".." || part.is_empty()) {
        return None;
    }
    let (folder, name) = path.rsplit_once('/').unwrap_or(("", path));
    if folder
        .split('/')
        .any(|part| part.contains('.') || part == "__pycache__")
    {
        return None;
    }
    let stem = if let Some(stem) = name.strip_suffix(".py").or(name.strip_suffix(".pyc")) {
        stem
    } else if name.ends_with(".so") {
        name.split('.').next()?
    } else {
        return None;
    };
    let mut parts: Vec<&str> = folder.split('/').filter(|part| !part.is_empty()).collect();
    if stem != "__init__" {
        parts.push(stem);
    }
    let valid = |part: &&str| {
        part.chars()
            .next()
            .is_some_and(|c| c.is_alphabetic() || c == '_')
            && part.chars().all(|c| c.is_alphanumeric() || c == '_')
    };
    (!parts.is_empty() && parts.iter().all(valid)).then(|| parts.join("."))
}

/// At most this many modules are looked for in the folders themselves: a pickle names a few
/// dozen; a hostile one must not turn into thousands of engine calls.
const SEARCH_LIMIT: usize = 256;

/// Of `imports`, those the runtime cannot import: not installed by a distribution
/// (`modules`), not in the standard library of `python` (its version, `3.11.7`), and with no
/// file for it in any of `roots` (its `sys.path` folders, in order).
pub(crate) async fn not_importable(
    imports: &[String],
    modules: &Modules,
    roots: &[String],
    python: Option<&str>,
    files: &impl Files,
) -> Result<Vec<String>, ReadError> {
    let mut missing = Vec::new();
    let mut searched = 0;
    for module in imports {
        let top = module.split('.').next().unwrap_or(module);
        if module == "__main__" || in_standard_library(top, python) || modules.all.contains(module)
        {
            continue;
        }
        // Past the limit a module is not looked for, and not reported: only a module known
        // to be absent is.
        searched += 1;
        if searched <= SEARCH_LIMIT && !found_in(files, roots, module).await? {
            missing.push(module.clone());
        }
    }
    Ok(missing)
}

/// Sets each model's `not-importable`: what of its `imports` the runtime cannot import.
pub(crate) async fn check_models(
    models: &mut [Model],
    modules: &Modules,
    roots: &[String],
    python: Option<&str>,
    files: &impl Files,
) -> Result<(), ReadError> {
    for model in models {
        model.not_importable =
            not_importable(&model.imports, modules, roots, python, files).await?;
    }
    Ok(())
}

/// Whether a file or package folder for `module` is in one of `roots`.
async fn found_in(files: &impl Files, roots: &[String], module: &str) -> Result<bool, ReadError> {
    let parts: Vec<&str> = module.split('.').collect();
    let Some((last, packages)) = parts.split_last() else {
        return Ok(false);
    };
    for root in roots {
        let folder = packages
            .iter()
            .fold(root.clone(), |folder, part| fs::join(&folder, part));
        let Some(entries) = files.list(&folder).await? else {
            continue;
        };
        let found = entries.iter().any(|entry| {
            let name = entry.name.as_str();
            match entry.kind {
                Kind::Folder => name == *last,
                _ => {
                    name == format!("{last}.py")
                        || name == format!("{last}.pyc")
                        || (name.ends_with(".so") && name.split('.').next() == Some(last))
                }
            }
        });
        if found {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Whether `top` is a module of the standard library of CPython `python` (3.11's
/// `sys.stdlib_module_names`, less what 3.12 and 3.13 removed).
pub(crate) fn in_standard_library(top: &str, python: Option<&str>) -> bool {
    if STANDARD_LIBRARY_311.binary_search(&top).is_err() {
        return false;
    }
    let minor = python
        .and_then(|version| version.split('.').nth(1))
        .and_then(|minor| minor.parse::<u32>().ok())
        .unwrap_or(11);
    let removed_in = |list: &[&str]| list.contains(&top);
    !((minor >= 12 && removed_in(REMOVED_IN_312)) || (minor >= 13 && removed_in(REMOVED_IN_313)))
}

/// Removed from the standard library in Python 3.12 (PEP 594's first, distutils, imp).
const REMOVED_IN_312: &[&str] = &["asynchat", "asyncore", "distutils", "imp", "smtpd"];

/// Removed in Python 3.13 (PEP 594).
const REMOVED_IN_313: &[&str] = &[
    "aifc",
    "audioop",
    "cgi",
    "cgitb",
    "chunk",
    "crypt",
    "imghdr",
    "lib2to3",
    "mailcap",
    "msilib",
    "nis",
    "nntplib",
    "ossaudiodev",
    "pipes",
    "sndhdr",
    "spwd",
    "sunau",
    "telnetlib",
    "uu",
    "xdrlib",
];

/// CPython 3.11's `sys.stdlib_module_names`, sorted (byte order, for binary search).
const STANDARD_LIBRARY_311: &[&str] = &[
    "__future__",
    "_abc",
    "_aix_support",
    "_ast",
    "_asyncio",
    "_bisect",
    "_blake2",
    "_bootsubprocess",
    "_bz2",
    "_codecs",
    "_codecs_cn",
    "_codecs_hk",
    "_codecs_iso2022",
    "_codecs_jp",
    "_codecs_kr",
    "_codecs_tw",
    "_collections",
    "_collections_abc",
    "_compat_pickle",
    "_compression",
    "_contextvars",
    "_crypt",
    "_csv",
    "_ctypes",
    "_curses",
    "_curses_panel",
    "_datetime",
    "_dbm",
    "_decimal",
    "_elementtree",
    "_frozen_importlib",
    "_frozen_importlib_external",
    "_functools",
    "_gdbm",
    "_hashlib",
    "_heapq",
    "_imp",
    "_io",
    "_json",
    "_locale",
    "_lsprof",
    "_lzma",
    "_markupbase",
    "_md5",
    "_msi",
    "_multibytecodec",
    "_multiprocessing",
    "_opcode",
    "_operator",
    "_osx_support",
    "_overlapped",
    "_pickle",
    "_posixshmem",
    "_posixsubprocess",
    "_py_abc",
    "_pydecimal",
    "_pyio",
    "_queue",
    "_random",
    "_scproxy",
    "_sha1",
    "_sha256",
    "_sha3",
    "_sha512",
    "_signal",
    "_sitebuiltins",
    "_socket",
    "_sqlite3",
    "_sre",
    "_ssl",
    "_stat",
    "_statistics",
    "_string",
    "_strptime",
    "_struct",
    "_symtable",
    "_thread",
    "_threading_local",
    "_tkinter",
    "_tokenize",
    "_tracemalloc",
    "_typing",
    "_uuid",
    "_warnings",
    "_weakref",
    "_weakrefset",
    "_winapi",
    "_zoneinfo",
    "abc",
    "aifc",
    "antigravity",
    "argparse",
    "array",
    "ast",
    "asynchat",
    "asyncio",
    "asyncore",
    "atexit",
    "audioop",
    "base64",
    "bdb",
    "binascii",
    "bisect",
    "builtins",
    "bz2",
    "cProfile",
    "calendar",
    "cgi",
    "cgitb",
    "chunk",
    "cmath",
    "cmd",
    "code",
    "codecs",
    "codeop",
    "collections",
    "colorsys",
    "compileall",
    "concurrent",
    "configparser",
    "contextlib",
    "contextvars",
    "copy",
    "copyreg",
    "crypt",
    "csv",
    "ctypes",
    "curses",
    "dataclasses",
    "datetime",
    "dbm",
    "decimal",
    "difflib",
    "dis",
    "distutils",
    "doctest",
    "email",
    "encodings",
    "ensurepip",
    "enum",
    "errno",
    "faulthandler",
    "fcntl",
    "filecmp",
    "fileinput",
    "fnmatch",
    "fractions",
    "ftplib",
    "functools",
    "gc",
    "genericpath",
    "getopt",
    "getpass",
    "gettext",
    "glob",
    "graphlib",
    "grp",
    "gzip",
    "hashlib",
    "heapq",
    "hmac",
    "html",
    "http",
    "idlelib",
    "imaplib",
    "imghdr",
    "imp",
    "importlib",
    "inspect",
    "io",
    "ipaddress",
    "itertools",
    "json",
    "keyword",
    "lib2to3",
    "linecache",
    "locale",
    "logging",
    "lzma",
    "mailbox",
    "mailcap",
    "marshal",
    "math",
    "mimetypes",
    "mmap",
    "modulefinder",
    "msilib",
    "msvcrt",
    "multiprocessing",
    "netrc",
    "nis",
    "nntplib",
    "nt",
    "ntpath",
    "nturl2path",
    "numbers",
    "opcode",
    "operator",
    "optparse",
    "os",
    "ossaudiodev",
    "pathlib",
    "pdb",
    "pickle",
    "pickletools",
    "pipes",
    "pkgutil",
    "platform",
    "plistlib",
    "poplib",
    "posix",
    "posixpath",
    "pprint",
    "profile",
    "pstats",
    "pty",
    "pwd",
    "py_compile",
    "pyclbr",
    "pydoc",
    "pydoc_data",
    "pyexpat",
    "queue",
    "quopri",
    "random",
    "re",
    "readline",
    "reprlib",
    "resource",
    "rlcompleter",
    "runpy",
    "sched",
    "secrets",
    "select",
    "selectors",
    "shelve",
    "shlex",
    "shutil",
    "signal",
    "site",
    "smtpd",
    "smtplib",
    "sndhdr",
    "socket",
    "socketserver",
    "spwd",
    "sqlite3",
    "sre_compile",
    "sre_constants",
    "sre_parse",
    "ssl",
    "stat",
    "statistics",
    "string",
    "stringprep",
    "struct",
    "subprocess",
    "sunau",
    "symtable",
    "sys",
    "sysconfig",
    "syslog",
    "tabnanny",
    "tarfile",
    "telnetlib",
    "tempfile",
    "termios",
    "textwrap",
    "this",
    "threading",
    "time",
    "timeit",
    "tkinter",
    "token",
    "tokenize",
    "tomllib",
    "trace",
    "traceback",
    "tracemalloc",
    "tty",
    "turtle",
    "turtledemo",
    "types",
    "typing",
    "unicodedata",
    "unittest",
    "urllib",
    "uu",
    "uuid",
    "venv",
    "warnings",
    "wave",
    "weakref",
    "webbrowser",
    "winreg",
    "winsound",
    "wsgiref",
    "xdrlib",
    "xml",
    "xmlrpc",
    "zipapp",
    "zipfile",
    "zipimport",
    "zlib",
    "zoneinfo",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_rows_become_modules_and_their_packages() {
        let mut modules = Modules::default();
        modules.add_record(
            b"numpy/_core/__init__.py,sha256=x,1\n\
              numpy/_core/multiarray.py,sha256=x,1\n\
              numpy/_core/_multiarray_umath.cpython-311-x86_64-linux-gnu.so,sha256=x,1\n\
              numpy-1.26.4.dist-info/METADATA,sha256=x,1\n\
              ../../bin/f2py,sha256=x,1\n\
              numpy/core/__pycache__/x.cpython-311.pyc,,\n",
            "numpy",
        );
        let found: Vec<&str> = modules.all.iter().map(String::as_str).collect();
        assert_eq!(
            found,
            [
                "numpy",
                "numpy._core",
                "numpy._core._multiarray_umath",
                "numpy._core.multiarray"
            ]
        );
    }

    #[test]
    fn a_module_maps_to_the_distribution_that_installs_it() {
        let mut modules = Modules::default();
        modules.add_record(b"six.py,,\n", "six");
        modules.add_record(
            b"yaml/__init__.py,,\nyaml/_yaml.cpython-311-x86_64-linux-gnu.so,,\n",
            "pyyaml",
        );
        modules.add_record(b"google/protobuf/__init__.py,,\n", "protobuf");
        let mut later = Modules::default();
        later.add_record(b"six.py,,\n", "six-fork");
        modules.extend(later);
        assert_eq!(modules.owner("six.moves"), Some("six"));
        assert_eq!(modules.owner("yaml._yaml"), Some("pyyaml"));
        assert_eq!(modules.owner("google.protobuf.message"), Some("protobuf"));
        assert_eq!(modules.owner("google"), None);
        assert_eq!(modules.owner("json"), None);
        modules.add_top_level(
            b"setuptools\npkg_resources\n_distutils_hack\n../x\n\n",
            "setuptools",
        );
        assert_eq!(modules.owner("pkg_resources.extern"), Some("setuptools"));
        assert_eq!(modules.owner("x"), None);
    }

    #[test]
    fn the_standard_library_follows_the_python_version() {
        assert!(in_standard_library("collections", Some("3.11.7")));
        assert!(in_standard_library("distutils", Some("3.11.7")));
        assert!(!in_standard_library("distutils", Some("3.12.1")));
        assert!(!in_standard_library("numpy", None));
        let mut sorted = STANDARD_LIBRARY_311.to_vec();
        sorted.sort_unstable();
        assert_eq!(sorted, STANDARD_LIBRARY_311);
    }
}
