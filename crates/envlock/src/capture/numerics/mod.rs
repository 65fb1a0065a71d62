//! The numerics fingerprint: the native libraries behind the numbers, and the CPU, captured
//! without importing any user package.
//!
//! Libraries come from the RECORD of installed distributions (numpy's and scipy's vendored
//! OpenBLAS in `*.libs/`, torch's `libgomp`, the `nvidia-*` wheels' CUDA libraries), and
//! from the system's BLAS/LAPACK, alternatives symlinks resolved inside the runtime. Which
//! one numpy and scipy load is read from their extensions' `DT_NEEDED` and `RPATH`. A
//! library's version is the string inside it (`OpenBLAS 0.3.27`), read from its read-only
//! data on the host, or found while it streams out of an image; its sha256 comes from
//! RECORD, or is computed for a system library. The CPU is read for live runtimes only.

pub(crate) mod check;
mod cpu;
mod elf;
mod fatbin;
mod frameworks;
mod probed;
mod reach;
pub(crate) mod scan;

use std::collections::BTreeMap;

use super::fs::{self, Files, ReadError};
use crate::declared::Target;
use crate::lock::{NumericLibrary, Numerics, Package, Platform, Python, Sha256, SystemPackage};
pub(crate) use cpu::host_cpu;
use elf::Dynamic;
pub(crate) use frameworks::frameworks;
pub(crate) use probed::ProbedNumerics;
use reach::{Inspected, Reading};
pub(crate) use reach::{Reach, ScanLibrary};
use scan::{classify, version_in, version_in_name};

/// A file of interest to the numerics fingerprint, as a distribution's RECORD lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Binary {
    /// The distribution (PEP 503 name).
    pub(crate) owner: String,
    /// Its absolute path in the runtime.
    pub(crate) path: String,
    /// `sha256:` from RECORD.
    pub(crate) sha256: Option<String>,
}

/// What the fingerprint starts from.
pub(crate) struct Runtime<'a> {
    pub(crate) python: Option<&'a Python>,
    pub(crate) packages: &'a [Package],
    /// What the distributions' RECORDs list.
    pub(crate) binaries: &'a [Binary],
    pub(crate) system_packages: &'a [SystemPackage],
    /// Its OS and architecture (`x86_64`, `aarch64`: the multiarch folder of the system's
    /// libraries).
    pub(crate) platform: &'a Platform,
    /// Whether the interpreter lives in a conda prefix (it has conda packages).
    pub(crate) conda: bool,
    /// What the probe read of the libraries inside the image.
    pub(crate) probed: Option<&'a ProbedNumerics>,
}

/// What the probe reads inside an image (so that libraries are not streamed out): the
/// RECORD rows under [`scan::prefixes`], and the system's candidates for `arch`.
#[derive(Debug, serde::Serialize)]
pub(crate) struct ProbeRequest {
    prefixes: Vec<&'static str>,
    needles: Vec<&'static str>,
    paths: Vec<String>,
    /// RECORD rows of numpy's and scipy's extensions, by the start of their path.
    extensions: Vec<String>,
}

/// The request for an image of `arch` (`x86_64`, `aarch64`).
pub(crate) fn probe_request(arch: &str) -> ProbeRequest {
    ProbeRequest {
        prefixes: scan::prefixes(),
        needles: scan::needles(),
        paths: system_names(arch),
        extensions: EXTENSIONS
            .iter()
            .map(|(_, module)| format!("{module}."))
            .collect(),
    }
}

/// numpy's and scipy's extensions that link BLAS: the distribution, and the module's path
/// in a site folder (the file is `MODULE.so` or `MODULE.<SOABI>.so`). The one list: the
/// probe is sent it, RECORD rows and layer entries are matched against it, and without a
/// RECORD (Debian's packages) the names are made from it.
const EXTENSIONS: &[(&str, &str)] = &[
    ("numpy", "numpy/core/_multiarray_umath"),
    ("numpy", "numpy/_core/_multiarray_umath"),
    ("scipy", "scipy/linalg/_fblas"),
];

/// [`SYSTEM_NAMES`] in each of the system's library folders.
fn system_names(arch: &str) -> Vec<String> {
    system_folders(arch)
        .iter()
        .flat_map(|folder| {
            SYSTEM_NAMES
                .iter()
                .map(move |name| format!("{folder}/{name}"))
        })
        .collect()
}

/// The libraries and extensions a RECORD lists, as [`Binary`]s of `package`.
pub(crate) fn binaries_in_record(record: &[u8], package: &Package) -> Vec<Binary> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(record);
    let mut row = csv::ByteRecord::new();
    let mut found = Vec::new();
    while reader.read_byte_record(&mut row).unwrap_or(false) {
        // Only shared objects matter: most rows are skipped before any decoding.
        let Some(path) = row
            .get(0)
            .filter(|path| memchr::memmem::find(path, b".so").is_some())
            .map(String::from_utf8_lossy)
        else {
            continue;
        };
        if path.starts_with('/') || path.split('/').any(|part| part == "..") {
            continue;
        }
        if classify(&path).is_none() && extension_of(&path).is_none() {
            continue;
        }
        let sha256 = row
            .get(1)
            .and_then(|hash| hash.strip_prefix(b"sha256="))
            .and_then(Sha256::from_record);
        found.push(Binary {
            owner: package.name.clone(),
            path: format!("{}/{path}", package.location.trim_end_matches('/')),
            sha256,
        });
    }
    found
}

/// Which distribution's extension a path is: numpy's `_multiarray_umath` (its BLAS) or
/// scipy's `_fblas` (its BLAS and LAPACK).
fn extension_of(path: &str) -> Option<&'static str> {
    if !path.ends_with(".so") {
        return None;
    }
    EXTENSIONS.iter().find_map(|(owner, module)| {
        let at = path.find(module)?;
        let inside = at == 0 || path.as_bytes()[at - 1] == b'/';
        let rest = &path[at + module.len()..];
        (inside && rest.starts_with('.') && !rest[1..].contains('/')).then_some(*owner)
    })
}

/// The system libraries looked at even when nothing links them: the BLAS and LAPACK that
/// Debian's alternatives (and others) point to.
const SYSTEM_NAMES: &[&str] = &["libblas.so.3", "liblapack.so.3", "libopenblas.so.0"];

/// A conda prefix's `lib/` holds its BLAS (OpenBLAS or MKL, by the `blas` metapackage) and
/// its OpenMP runtime.
const CONDA_NAMES: &[&str] = &[
    "libblas.so.3",
    "liblapack.so.3",
    "libopenblas.so.0",
    "libmkl_rt.so.2",
    "libgomp.so.1",
    "libomp.so",
    "libiomp5.so",
];

fn system_folders(arch: &str) -> Vec<String> {
    vec![
        format!("/lib/{arch}-linux-gnu"),
        format!("/usr/lib/{arch}-linux-gnu"),
        "/lib64".to_string(),
        "/usr/lib64".to_string(),
        "/lib".to_string(),
        "/usr/lib".to_string(),
    ]
}

/// Captures the fingerprint of `runtime`, reading its binaries through `reach`. Every
/// lookup of one step runs at once: in an image each is a request to the engine.
pub(crate) async fn capture<F: Files + ScanLibrary>(
    reach: Reach<'_, F>,
    runtime: &Runtime<'_>,
) -> Result<Numerics, ReadError> {
    let reading = Reading {
        reach,
        failed: std::sync::Mutex::new(None),
    };
    let numerics = fingerprint(&reading, runtime).await;
    match reading.failed.into_inner().expect("never poisoned") {
        Some(error) => Err(error),
        None => Ok(numerics),
    }
}

async fn fingerprint<F: Files + ScanLibrary>(
    reach: &Reading<'_, F>,
    runtime: &Runtime<'_>,
) -> Numerics {
    use futures_util::future::join_all;
    // Where libraries may be: the RECORDs' shared objects, the system's and a conda
    // prefix's BLAS, and what numpy's and scipy's extensions link.
    let mut places: Vec<Place<'_>> = runtime
        .binaries
        .iter()
        .filter(|binary| classify(&binary.path).is_some())
        .map(|binary| Place::new(binary.path.clone(), Some(binary)))
        .collect();
    places.extend(
        system_places(runtime)
            .into_iter()
            .map(|path| Place::new(path, None)),
    );
    let extensions = extensions(runtime);
    let dynamics = join_all(
        extensions
            .iter()
            .map(|(_, path)| reach.dynamic(runtime, path)),
    )
    .await;
    for ((user, extension), dynamic) in extensions.iter().zip(dynamics) {
        let Some(dynamic) = dynamic else {
            continue;
        };
        for path in linked(reach, runtime, extension, &dynamic).await {
            let mut place = Place::new(path, None);
            place.user = Some(user);
            places.push(place);
        }
    }
    let resolved = join_all(
        places
            .iter()
            .map(|place| reach.resolve(runtime, &place.path)),
    )
    .await;
    // One library per real path: a RECORD's row says who ships it, a link who loads it.
    let mut found: BTreeMap<String, (scan::Kind, Option<&Binary>, Vec<String>)> = BTreeMap::new();
    for (place, resolved) in places.iter().zip(resolved) {
        let Some(resolved) = resolved else {
            continue;
        };
        let Some(kind) = classify(&resolved).or_else(|| classify(&place.path)) else {
            continue;
        };
        let entry = found.entry(resolved).or_insert((kind, None, Vec::new()));
        entry.1 = entry.1.or(place.binary);
        if let Some(user) = place.user {
            if !entry.2.iter().any(|known| known == user) {
                entry.2.push(user.to_string());
            }
        }
    }
    let described = join_all(found.into_iter().map(|(resolved, (kind, binary, users))| {
        describe(reach, runtime, resolved, kind, binary, users)
    }))
    .await;
    Numerics {
        libraries: described,
        cpu: None,
        kernels: Vec::new(),
        frameworks: frameworks(
            runtime.packages,
            &Target::of_runtime(runtime.python, runtime.platform),
        ),
    }
}

/// A path a library may be at, with what says so.
struct Place<'a> {
    path: String,
    /// The RECORD row that lists it.
    binary: Option<&'a Binary>,
    /// The distribution whose extension links it.
    user: Option<&'static str>,
}

impl<'a> Place<'a> {
    fn new(path: String, binary: Option<&'a Binary>) -> Place<'a> {
        Place {
            path,
            binary,
            user: None,
        }
    }
}

/// The system's BLAS and LAPACK, and a conda prefix's.
fn system_places(runtime: &Runtime<'_>) -> Vec<String> {
    let mut places = system_names(&runtime.platform.arch);
    if runtime.conda {
        let prefixes = runtime
            .python
            .iter()
            .flat_map(|python| [&python.prefix, &python.base_prefix]);
        for prefix in prefixes.flatten() {
            let lib = format!("{}/lib", prefix.trim_end_matches('/'));
            places.extend(CONDA_NAMES.iter().map(|name| format!("{lib}/{name}")));
        }
    }
    places
}

/// numpy's and scipy's extensions: from RECORD, else (Debian's packages have none) by the
/// names they have for this interpreter's ABI.
fn extensions(runtime: &Runtime<'_>) -> Vec<(&'static str, String)> {
    let mut found: Vec<(&'static str, String)> = runtime
        .binaries
        .iter()
        .filter_map(|binary| Some((extension_of(&binary.path)?, binary.path.clone())))
        .collect();
    let soabi = runtime.python.and_then(|python| {
        python.soabi.clone().or_else(|| {
            let minor: String = python
                .version
                .split('.')
                .take(2)
                .collect::<Vec<_>>()
                .join("");
            (python.implementation == "cpython")
                .then(|| format!("cpython-{minor}-{}-linux-gnu", &runtime.platform.arch))
        })
    });
    for &(user, relative) in EXTENSIONS {
        let Some(package) = runtime.packages.iter().find(|p| p.name == user) else {
            continue;
        };
        if found.iter().any(|(known, _)| *known == user) {
            continue;
        }
        for soabi in soabi.iter() {
            let location = package.location.trim_end_matches('/');
            found.push((user, format!("{location}/{relative}.{soabi}.so")));
            found.push((user, format!("{location}/{relative}.so")));
        }
    }
    found
}

/// The numeric libraries `extension` links, found as the dynamic linker would: its
/// `RUNPATH`/`RPATH` (`$ORIGIN` expanded), then the system's folders.
async fn linked<F: Files + ScanLibrary>(
    reach: &Reading<'_, F>,
    runtime: &Runtime<'_>,
    extension: &str,
    dynamic: &Dynamic,
) -> Vec<String> {
    let origin = extension.rsplit_once('/').map_or("/", |(folder, _)| folder);
    let mut folders: Vec<String> = dynamic
        .search
        .iter()
        .map(|folder| {
            folder
                .replace("$ORIGIN", origin)
                .replace("${ORIGIN}", origin)
        })
        .filter(|folder| folder.starts_with('/'))
        .collect();
    folders.extend(system_folders(&runtime.platform.arch));
    let mut found = Vec::new();
    for name in dynamic
        .needed
        .iter()
        .filter(|name| classify(name).is_some())
    {
        for folder in &folders {
            // `$ORIGIN/../../numpy.libs`: `..` resolved in the runtime's own tree.
            let candidate = fs::normalize(&format!("{folder}/{name}"));
            if reach.resolve(runtime, &candidate).await.is_some() {
                found.push(candidate);
                break;
            }
        }
    }
    found
}

/// The library at `resolved`: its version and digest (from the probe's reading, else read
/// here), who ships it and who loads it.
async fn describe<F: Files + ScanLibrary>(
    reach: &Reading<'_, F>,
    runtime: &Runtime<'_>,
    resolved: String,
    kind: scan::Kind,
    binary: Option<&Binary>,
    loaded_by: Vec<String>,
) -> NumericLibrary {
    let recorded = binary.and_then(|binary| binary.sha256.clone());
    let probed = runtime
        .probed
        .and_then(|probed| probed.libraries.get(&resolved));
    let inspected = match probed {
        Some(probed) => {
            let snippets: Vec<u8> = probed
                .snippets
                .iter()
                .flat_map(|snippet| snippet.chars().map(|c| c as u32 as u8).chain([0]))
                .collect();
            Inspected {
                version: version_in(kind.family, &snippets),
                sha256: probed.sha256.as_deref().and_then(Sha256::from_hex),
                gpu: probed
                    .fatbins
                    .as_ref()
                    .filter(|_| scan::is_cuda(kind.family))
                    .map(|lists| {
                        fatbin::code_of(&lists.iter().map(|list| list.to_vec()).collect())
                    }),
            }
        }
        None => {
            reach
                .inspect(&resolved, kind.family, recorded.is_none())
                .await
        }
    };
    let Inspected {
        version,
        sha256,
        gpu,
    } = inspected;
    let system = binary
        .is_none()
        .then(|| system_package(runtime, &resolved))
        .flatten();
    let threading = kind
        .threading
        .or_else(|| threading_of(kind.family))
        .map(str::to_string);
    NumericLibrary {
        family: kind.family.to_string(),
        // A system library's soname (`libblas.so.3`) is no version: its package's is.
        version: version
            .or_else(|| system.map(|package| package.version.clone()))
            .or_else(|| version_in_name(&resolved)),
        threading,
        sha256: recorded.or(sha256),
        shipped_by: binary
            .map(|binary| binary.owner.clone())
            .or_else(|| system.map(|package| package.name.clone())),
        loaded_by,
        path: resolved,
        loaded: false,
        gpu,
    }
}

/// What a family's name says of its threads when nothing else does.
fn threading_of(family: &str) -> Option<&'static str> {
    match family {
        "libgomp" | "libiomp5" | "libomp" => Some("openmp"),
        _ => None,
    }
}

/// The system package that ships a library of an alternatives folder (Debian's names).
fn system_package<'r>(runtime: &Runtime<'r>, resolved: &str) -> Option<&'r SystemPackage> {
    let folder = resolved.rsplit('/').nth(1)?;
    let name = match folder {
        "blas" => "libblas3".to_string(),
        "lapack" => "liblapack3".to_string(),
        "atlas" => "libatlas3-base".to_string(),
        other => match other.split_once('-') {
            Some(("openblas", variant)) => format!("libopenblas0-{variant}"),
            Some(("blis", variant)) => format!("libblis4-{variant}"),
            _ => return None,
        },
    };
    runtime.system_packages.iter().find(|p| p.name == name)
}

/// The largest extension read for its dynamic section.
pub(crate) const EXTENSION_LIMIT: u64 = 64 << 20;

/// Whether a file is one the fingerprint reads whole from an image (an extension).
pub(crate) fn is_extension(path: &str) -> bool {
    extension_of(path).is_some()
}

/// For the fuzz targets (`src/fuzzing.rs`): an ELF file's strings and dynamic section.
pub(crate) fn fuzz_elf(bytes: &[u8]) {
    elf::fuzz(bytes);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_hashes_are_read_as_hex() {
        // sha256 of the empty string, as RECORD writes it.
        assert_eq!(
            Sha256::from_record(b"47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU").as_deref(),
            Some("sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        );
        assert_eq!(Sha256::from_record(b"short"), None);
    }

    #[test]
    fn record_rows_of_libraries_and_extensions() {
        let package = Package {
            name: "numpy".into(),
            location: "/site".into(),
            ..Package::default()
        };
        let record = b"numpy/__init__.py,sha256=47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU,0\n\
            numpy.libs/libscipy_openblas64_-ff651d7f.so,sha256=47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU,0\n\
            numpy/_core/_multiarray_umath.cpython-311-x86_64-linux-gnu.so,,\n\
            ../../../bin/libopenblas.so,,\n";
        let found = binaries_in_record(record, &package);
        let paths: Vec<&str> = found.iter().map(|b| b.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "/site/numpy.libs/libscipy_openblas64_-ff651d7f.so",
                "/site/numpy/_core/_multiarray_umath.cpython-311-x86_64-linux-gnu.so"
            ]
        );
        assert!(found[0].sha256.is_some());
    }
}
