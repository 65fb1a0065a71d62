//! The CUDA release each GPU framework was built for, from what its metadata says: the exact
//! pin of its CUDA runtime wheel (torch 2.15 from PyPI requires `cuda-toolkit[…]==13.2.2`,
//! torch 2.5 `nvidia-cuda-runtime-cu12==12.4.127`), else its version's label (`2.5.1+cu124`
//! from PyTorch's index), else its name (`cupy-cuda12x`, `jax-cuda12-plugin`). Nothing is
//! imported or run.

use pep508_rs::pep440_rs::Operator;
use pep508_rs::VersionOrUrl;

use crate::declared::{parse_requirement, Applies, Marker, Target};
use crate::lock::{Framework, Package};

/// The distributions that pin CUDA's runtime, by name: `cuda-toolkit` (CUDA 13's
/// metapackage), `nvidia-cuda-runtime` and `nvidia-cuda-runtime-cuNN`.
fn is_cuda_runtime(name: &str) -> bool {
    name == "cuda-toolkit"
        || name == "nvidia-cuda-runtime"
        || name
            .strip_prefix("nvidia-cuda-runtime-cu")
            .is_some_and(|major| !major.is_empty() && major.bytes().all(|b| b.is_ascii_digit()))
}

/// `X.Y` of a version `X.Y.Z…`.
fn release(version: &str) -> Option<String> {
    let mut parts = version.split('.');
    let (major, minor) = (parts.next()?, parts.next()?);
    let number = |part: &str| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit());
    (number(major) && number(minor)).then(|| format!("{major}.{minor}"))
}

/// The pin of a CUDA runtime among `requires` whose marker holds on `target` (torch's CUDA
/// pins are for Linux only), with the extra it names, if any, taken as installed (the
/// framework states its build there: onnxruntime-gpu's `nvidia-cuda-runtime~=13.0; extra ==
/// "cuda"`): `(release, the requirement)`. An exact pin gives `X.Y`, a compatible one
/// (`~=13.0`) the major.
fn pinned(requires: &[String], target: &Target) -> Option<(String, String)> {
    requires.iter().find_map(|line| {
        let requirement = parse_requirement(line).ok()?;
        if let Some(marker) = requirement.marker.contents() {
            let text = marker.to_string();
            let extras: Vec<String> = text
                .split("extra == ")
                .skip(1)
                .filter_map(|rest| {
                    Some(
                        rest.strip_prefix(['"', '\''])?
                            .split(['"', '\''])
                            .next()?
                            .to_string(),
                    )
                })
                .collect();
            let marker = Marker::parse(&text).ok()?;
            if target.applies(&marker, &extras, &[]) != Applies::Yes {
                return None;
            }
        }
        let name = requirement.name.to_string();
        let Some(VersionOrUrl::VersionSpecifier(specifiers)) = &requirement.version_or_url else {
            return None;
        };
        if !is_cuda_runtime(&name) {
            return None;
        }
        match specifiers.iter().collect::<Vec<_>>().as_slice() {
            [only] if matches!(only.operator(), Operator::Equal | Operator::ExactEqual) => {
                let version = only.version().to_string();
                Some((release(&version)?, format!("{name}=={version}")))
            }
            [only] if *only.operator() == Operator::TildeEqual => {
                let major = only.version().release().first()?.to_string();
                Some((major, format!("{name}~={}", only.version())))
            }
            _ => None,
        }
    })
}

/// `12.4` of a version labelled `+cu124` (`+cu118` is 11.8, `+cu132` 13.2).
fn labelled(version: &str) -> Option<String> {
    let digits = version.split_once('+')?.1.strip_prefix("cu")?;
    if digits.len() < 2 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let (major, minor) = digits.split_at(digits.len() - 1);
    Some(format!("{major}.{minor}"))
}

/// The CUDA major a distribution's name carries: `cupy-cuda12x`, `jax-cuda12-plugin`,
/// `jax-cuda12-pjrt`.
fn named(name: &str) -> Option<String> {
    let major = if let Some(rest) = name.strip_prefix("cupy-cuda") {
        rest.strip_suffix('x')?
    } else {
        let rest = name.strip_prefix("jax-cuda")?;
        rest.strip_suffix("-plugin")
            .or_else(|| rest.strip_suffix("-pjrt"))?
    };
    (!major.is_empty() && major.bytes().all(|b| b.is_ascii_digit())).then(|| major.to_string())
}

/// The frameworks among `packages` of a runtime whose markers `target` evaluates, by name.
pub(crate) fn frameworks(packages: &[Package], target: &Target) -> Vec<Framework> {
    let mut found: Vec<Framework> = packages
        .iter()
        .filter_map(|package| {
            let (cuda, from) = pinned(&package.requires, target)
                .or_else(|| {
                    labelled(&package.version).map(|cuda| {
                        let label = package.version.split_once('+').map(|(_, l)| l);
                        (cuda, format!("+{}", label.unwrap_or_default()))
                    })
                })
                .or_else(|| named(&package.name).map(|cuda| (cuda, package.name.clone())))?;
            Some(Framework {
                name: package.name.clone(),
                version: package.version.clone(),
                cuda,
                from,
            })
        })
        .collect();
    found.sort_by(|a, b| a.name.cmp(&b.name));
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn linux() -> Target {
        let platform = crate::lock::Platform {
            os: "linux".into(),
            arch: "x86_64".into(),
            ..crate::lock::Platform::default()
        };
        Target::of_runtime(None, &platform)
    }

    fn package(name: &str, version: &str, requires: &[&str]) -> Package {
        Package {
            name: name.into(),
            version: version.into(),
            requires: requires.iter().map(|line| line.to_string()).collect(),
            ..Package::default()
        }
    }

    #[test]
    fn what_says_which_cuda_a_framework_is_built_for() {
        let cuda = |package: Package| {
            frameworks(&[package], &linux())
                .pop()
                .map(|found| (found.cuda, found.from))
        };
        assert_eq!(
            cuda(package(
                "torch",
                "2.15.0",
                &["cuda-toolkit[cublas,cudart]==13.2.2; platform_system == \"Linux\""]
            )),
            Some(("13.2".into(), "cuda-toolkit==13.2.2".into()))
        );
        // As torch 2.5.1's METADATA writes it.
        assert_eq!(
            cuda(package(
                "torch",
                "2.5.1",
                &["nvidia-cuda-runtime-cu12 (==12.4.127) ; platform_system == \"Linux\""]
            )),
            Some(("12.4".into(), "nvidia-cuda-runtime-cu12==12.4.127".into()))
        );
        assert_eq!(
            cuda(package("torch", "2.5.1+cu118", &[])),
            Some(("11.8".into(), "+cu118".into()))
        );
        assert_eq!(
            cuda(package("cupy-cuda12x", "13.3.0", &[])),
            Some(("12".into(), "cupy-cuda12x".into()))
        );
        assert_eq!(
            cuda(package("jax-cuda12-plugin", "0.4.35", &[])),
            Some(("12".into(), "jax-cuda12-plugin".into()))
        );
        // A range is no build; a CPU build says nothing; nor does a lookalike name.
        assert_eq!(
            cuda(package("x", "1.0", &["nvidia-cuda-runtime-cu12>=12.0"])),
            None
        );
        assert_eq!(cuda(package("torch", "2.5.1+cpu", &[])), None);
        // onnxruntime-gpu 1.31.1's, as its METADATA writes them: its CUDA extra's runtime.
        let onnxruntime = [
            "nvidia-cuda-nvrtc~=13.0; extra == \"cuda\"",
            "nvidia-cuda-runtime~=13.0; extra == \"cuda\"",
            "nvidia-cudnn-cu13~=9.0; extra == \"cudnn\"",
        ];
        assert_eq!(
            cuda(package("onnxruntime-gpu", "1.31.1", &onnxruntime)),
            Some(("13".into(), "nvidia-cuda-runtime~=13.0".into()))
        );
        // On macOS the pin is not in force.
        let mac = crate::lock::Platform {
            os: "darwin".into(),
            arch: "arm64".into(),
            ..crate::lock::Platform::default()
        };
        let torch = package(
            "torch",
            "2.5.1",
            &["nvidia-cuda-runtime-cu12 (==12.4.127) ; platform_system == \"Linux\""],
        );
        assert!(frameworks(&[torch], &Target::of_runtime(None, &mac)).is_empty());
        assert_eq!(
            cuda(package(
                "x",
                "1.0",
                &["nvidia-cuda-runtime-cu12==12.4.127; sys_platform == \"win32\""]
            )),
            None
        );
        assert_eq!(cuda(package("cupy-cudax", "1.0", &[])), None);
        assert_eq!(
            cuda(package("x", "1.0", &["nvidia-cuda-runtime-cuda==12.4.1"])),
            None
        );
    }
}
