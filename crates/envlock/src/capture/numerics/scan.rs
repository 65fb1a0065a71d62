//! Which numeric library a file is, and what version it says it is: the family and threading
//! from its name (or the alternatives folder it resolves into), the version from the string
//! the library carries (`OpenBLAS 0.3.27`, `GCC: (GNU) 12.2.0` in libgomp), found in its
//! read-only data or, from a stream, anywhere in its bytes.

use std::io::{self, Read};

use super::fatbin::Streamed;
use crate::lock::{GpuCode, Sha256, CUDA_FAMILIES};

/// A library's family, and its threading when the name tells.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Kind {
    pub(crate) family: &'static str,
    pub(crate) threading: Option<&'static str>,
}

/// The numeric library at `path` (its real path, alternatives resolved), if it is one.
pub(crate) fn classify(path: &str) -> Option<Kind> {
    let name = path.rsplit('/').next().unwrap_or(path);
    // Most files of a distribution are not shared objects: no allocation for them.
    if !(name.starts_with("lib") && (name.contains(".so") || name.ends_with(".dylib"))) {
        return None;
    }
    let name = name.to_ascii_lowercase();
    let folder = path.rsplit('/').nth(1).unwrap_or_default();
    // Debian's alternatives: `…/openblas-pthread/libblas.so.3`, `…/blis-openmp/…`, `…/blas/…`.
    let threading = ["pthread", "openmp", "serial"].into_iter().find(|variant| {
        folder
            .strip_suffix(variant)
            .is_some_and(|rest| rest.ends_with('-'))
    });
    let family_of_folder = match folder.split('-').next().unwrap_or_default() {
        "openblas" => Some("openblas"),
        "blis" => Some("blis"),
        "atlas" => Some("atlas"),
        "flexiblas" => Some("flexiblas"),
        _ => None,
    };
    let (_, family, reference) = FAMILIES
        .iter()
        .find(|(prefix, _, _)| name.starts_with(prefix))?;
    let family = match reference {
        // `libblas.so.3` is whatever the alternatives folder it resolves into holds.
        true => family_of_folder.unwrap_or(family),
        false => family,
    };
    Some(Kind { family, threading })
}

/// Whether `family`'s libraries are CUDA's, which carry GPU code.
pub(crate) fn is_cuda(family: &str) -> bool {
    CUDA_FAMILIES.contains(&family)
}

/// Library names by how they start: the family, and whether the name is the generic
/// reference one (`libblas.so`, which alternatives point at another family's copy). The
/// one list [`classify`] reads and the probe is sent.
const FAMILIES: &[(&str, &str, bool)] = &[
    ("libblas.so", "reference-blas", true),
    ("libcblas.so", "reference-blas", true),
    ("liblapack.so", "reference-lapack", true),
    ("libopenblas", "openblas", false),
    ("libscipy_openblas", "openblas", false),
    ("libmkl_", "mkl", false),
    ("libblis", "blis", false),
    ("libflexiblas", "flexiblas", false),
    ("libatlas", "atlas", false),
    ("libsatlas", "atlas", false),
    ("libtatlas", "atlas", false),
    ("libgomp", "libgomp", false),
    ("libiomp5", "libiomp5", false),
    ("libomp.", "libomp", false),
    ("libomp-", "libomp", false),
    ("libcudart", "cudart", false),
    ("libcublas", "cublas", false),
    ("libcudnn", "cudnn", false),
    ("libnccl", "nccl", false),
    ("libcufft", "cufft", false),
    ("libcurand", "curand", false),
    ("libcusparse", "cusparse", false),
    ("libcusolver", "cusolver", false),
    ("libcufile", "cufile", false),
    ("libnvrtc", "nvrtc", false),
    ("libnvjitlink", "nvjitlink", false),
    ("libtorch_cuda", "torch-cuda", false),
    ("libc10_cuda", "c10-cuda", false),
    ("libonnxruntime_providers_cuda", "onnxruntime-cuda", false),
];

/// The starts of the names of numeric libraries, for the probe to pick them out of
/// RECORDs inside an image.
pub(crate) fn prefixes() -> Vec<&'static str> {
    FAMILIES.iter().map(|(prefix, _, _)| *prefix).collect()
}

/// Each family's version needles, most specific first.
const NEEDLES: &[(&str, &[&str])] = &[
    ("openblas", &["OpenBLAS "]),
    ("mkl", &["Math Kernel Library Version "]),
    ("libgomp", &["GCC: (GNU) ", "GCC: ("]),
];

/// Every family's version needles, for the probe.
pub(crate) fn needles() -> Vec<&'static str> {
    let mut all: Vec<&'static str> = NEEDLES
        .iter()
        .flat_map(|(_, needles)| needles.iter().copied())
        .collect();
    all.dedup();
    all
}

fn needles_of(family: &str) -> &'static [&'static str] {
    NEEDLES
        .iter()
        .find(|(known, _)| *known == family)
        .map_or(&[], |(_, needles)| needles)
}

/// What a library's bytes say: its version string.
pub(crate) fn version_in(family: &str, bytes: &[u8]) -> Option<String> {
    let needles = needles_of(family);
    needles.iter().find_map(|needle| {
        memchr::memmem::find_iter(bytes, needle).find_map(|at| {
            let rest = &bytes[at + needle.len()..];
            // GCC's `GCC: (Debian 12.2.0-14) 12.2.0`: the version follows the parenthesis.
            let rest = match rest.iter().position(|b| *b == b')') {
                Some(close) if needle.ends_with('(') && close < 64 => rest.get(close + 2..)?,
                _ => rest,
            };
            token(rest)
        })
    })
}

/// A version at the start of `rest`: a digit, then digits, letters and dots (`0.3.23.dev`).
fn token(rest: &[u8]) -> Option<String> {
    if !rest.first()?.is_ascii_digit() {
        return None;
    }
    let end = rest
        .iter()
        .position(|b| !(b.is_ascii_alphanumeric() || *b == b'.'))
        .unwrap_or(rest.len())
        .min(32);
    let version = String::from_utf8_lossy(&rest[..end])
        .trim_end_matches('.')
        .to_string();
    version.contains('.').then_some(version)
}

/// The version a file name or soname gives: `libcublas.so.12.1.3.1` → `12.1.3.1`.
pub(crate) fn version_in_name(path: &str) -> Option<String> {
    let name = path.rsplit('/').next().unwrap_or(path);
    let (_, after) = name.split_once(".so.")?;
    after
        .bytes()
        .all(|b| b.is_ascii_digit() || b == b'.')
        .then(|| after.to_string())
}

/// The digest, version string and GPU code of a library read as a stream, in O(1) memory:
/// the needle is looked for across chunk boundaries, and the fatbins walked as they pass.
pub(crate) struct Scanned {
    pub(crate) sha256: String,
    pub(crate) version: Option<String>,
    /// A CUDA library's GPU code.
    pub(crate) gpu: Option<GpuCode>,
}

/// The most bytes of one library read.
const LIBRARY_LIMIT: u64 = 4 << 30;

/// Reads `reader` whole, hashing it and looking for `family`'s version string, and for a
/// CUDA library's fatbins.
pub(crate) fn scan_stream(reader: &mut dyn Read, family: &str) -> io::Result<Scanned> {
    const OVERLAP: usize = 128;
    let mut digest = Sha256::default();
    let mut buffer = vec![0u8; 1 << 20];
    let mut carried: Vec<u8> = Vec::new();
    let mut version = None;
    let mut reader = reader.take(LIBRARY_LIMIT);
    let mut fatbins = is_cuda(family).then(Streamed::new);
    loop {
        let count = reader.read(&mut buffer)?;
        if count == 0 {
            break;
        }
        let chunk = &buffer[..count];
        digest.update(chunk);
        if let Some(fatbins) = &mut fatbins {
            fatbins.push(chunk);
        }
        if version.is_none() {
            carried.extend_from_slice(chunk);
            version = version_in(family, &carried);
            let keep = carried.len().saturating_sub(OVERLAP);
            carried.drain(..keep);
        }
    }
    Ok(Scanned {
        sha256: digest.finish(),
        version,
        gpu: fatbins.and_then(Streamed::finish),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_from_names_and_alternatives_folders() {
        let family = |path: &str| classify(path).map(|kind| (kind.family, kind.threading));
        assert_eq!(
            family("/x/numpy.libs/libscipy_openblas64_-ff651d7f.so"),
            Some(("openblas", None))
        );
        assert_eq!(
            family("/usr/lib/x86_64-linux-gnu/openblas-pthread/libblas.so.3"),
            Some(("openblas", Some("pthread")))
        );
        assert_eq!(
            family("/usr/lib/x86_64-linux-gnu/blas/libblas.so.3"),
            Some(("reference-blas", None))
        );
        assert_eq!(
            family("/usr/lib/x86_64-linux-gnu/blis-openmp/liblapack.so.3"),
            Some(("blis", Some("openmp")))
        );
        assert_eq!(
            family("/x/scikit_learn.libs/libgomp-a34b3233.so.1.0.0"),
            Some(("libgomp", None))
        );
        assert_eq!(family("/x/numpy.libs/libgfortran-040039e1.so.5.0.0"), None);
        assert_eq!(family("/x/numpy/core/multiarray.py"), None);
    }

    #[test]
    fn what_the_probe_is_sent_is_what_classify_knows() {
        for prefix in prefixes() {
            let path = format!("/site/x.libs/{prefix}x.so.1");
            assert!(classify(&path).is_some(), "{prefix}");
        }
        for family in ["openblas", "mkl", "libgomp"] {
            for needle in needles_of(family) {
                assert!(
                    needles().iter().any(|sent| needle.starts_with(sent)),
                    "{needle}"
                );
            }
        }
    }

    #[test]
    fn versions_inside_and_in_names() {
        let blas = b"..\0 MAX_THREADS=%d\0OpenBLAS 0.3.23.dev  USE64BITINT DYNAMIC_ARCH";
        assert_eq!(version_in("openblas", blas).as_deref(), Some("0.3.23.dev"));
        let gomp = b"\0GCC: (GNU) 10.2.1 20210130 (Red Hat 10.2.1-11)\0";
        assert_eq!(version_in("libgomp", gomp).as_deref(), Some("10.2.1"));
        let debian = b"\0GCC: (Debian 12.2.0-14) 12.2.0\0";
        assert_eq!(version_in("libgomp", debian).as_deref(), Some("12.2.0"));
        assert_eq!(version_in("openblas", b"OpenBLAS Warning : x"), None);
        assert_eq!(
            version_in_name("/n/libcublas.so.12.1.3.1").as_deref(),
            Some("12.1.3.1")
        );
        assert_eq!(
            version_in_name("/n/libopenblas64_p-r0-0cf96a72.3.23.dev.so"),
            None
        );
    }

    #[test]
    fn a_stream_finds_a_version_across_chunks() {
        let mut bytes = vec![b'x'; (1 << 20) - 5];
        bytes.extend_from_slice(b"OpenBLAS 0.3.27 DYNAMIC");
        let scanned = scan_stream(&mut &bytes[..], "openblas").unwrap();
        assert_eq!(scanned.version.as_deref(), Some("0.3.27"));
        assert_eq!(scanned.sha256, Sha256::of(&bytes));
    }
}
