//! The numerics fingerprint compared: native libraries by who ships them and what they do
//! (`numeric-library`: error for another family, warning for another version or build, an
//! added or removed one), the CPU between two live runtimes (`cpu-features`: info, warning
//! when FMA or the AVX-512 family differ), and the `--numerics-check` kernels
//! (`numerics-kernel`: another result, measured in ulps and relative error).

use std::collections::{BTreeMap, BTreeSet};

use super::{version, Code, Findings, Severity};
use crate::lock::{Cpu, Kernel, Lock, NumericLibrary};

pub(super) fn diff_numerics(baseline: &Lock, target: &Lock, findings: &mut Findings) {
    // A lock from before the fingerprint (or of a runtime without one) has nothing to say.
    if baseline.numerics.is_empty() || target.numerics.is_empty() {
        return;
    }
    let (old, new) = (by_role(baseline), by_role(target));
    let subjects: BTreeSet<&String> = old.keys().chain(new.keys()).collect();
    for subject in subjects {
        diff_role(subject, old.get(subject), new.get(subject), findings);
    }
    if let (Some(old), Some(new)) = (&baseline.numerics.cpu, &target.numerics.cpu) {
        diff_cpu(old, new, findings);
    }
    diff_kernels(
        &baseline.numerics.kernels,
        &target.numerics.kernels,
        findings,
    );
    super::cuda::diff_gpu_code(baseline, target, findings);
    super::cuda::diff_frameworks(baseline, target, findings);
}

/// Libraries by `owner:role`: `numpy:blas` (numpy's vendored BLAS), `system:blas`.
fn by_role(lock: &Lock) -> BTreeMap<String, Vec<&NumericLibrary>> {
    let mut roles: BTreeMap<String, Vec<&NumericLibrary>> = BTreeMap::new();
    for library in &lock.numerics.libraries {
        let owner = library
            .shipped_by
            .as_deref()
            .filter(|owner| lock.packages.iter().any(|package| package.name == *owner))
            .unwrap_or("system");
        roles
            .entry(format!("{owner}:{}", library.role()))
            .or_default()
            .push(library);
    }
    roles
}

fn describe(libraries: &[&NumericLibrary]) -> String {
    let described: BTreeSet<String> = libraries
        .iter()
        .map(|library| {
            let mut text = library.family.clone();
            if let Some(version) = &library.version {
                text.push_str(&format!(" {version}"));
            }
            if let Some(threading) = &library.threading {
                text.push_str(&format!(" ({threading})"));
            }
            if !library.loaded_by.is_empty() {
                text.push_str(&format!(" [loaded by {}]", library.loaded_by.join(", ")));
            }
            text
        })
        .collect();
    described.into_iter().collect::<Vec<_>>().join(", ")
}

fn diff_role(
    subject: &str,
    old: Option<&Vec<&NumericLibrary>>,
    new: Option<&Vec<&NumericLibrary>>,
    findings: &mut Findings,
) {
    let (before, after) = (old.map(|l| describe(l)), new.map(|l| describe(l)));
    let families = |libraries: Option<&Vec<&NumericLibrary>>| -> BTreeSet<String> {
        libraries
            .into_iter()
            .flatten()
            .map(|library| library.family.clone())
            .collect()
    };
    let digests = |libraries: Option<&Vec<&NumericLibrary>>| -> BTreeSet<Option<String>> {
        libraries
            .into_iter()
            .flatten()
            .map(|library| library.sha256.clone())
            .collect()
    };
    let (message, severity) = match (&before, &after) {
        (Some(before), None) => (
            format!("numeric library {subject} {before} is gone from the target"),
            Severity::Warning,
        ),
        (None, Some(after)) => (
            format!("numeric library {subject} added: {after}"),
            Severity::Warning,
        ),
        (Some(before), Some(after)) if families(old) != families(new) => (
            format!("numeric library {subject}: another family, {before} -> {after}"),
            Severity::Error,
        ),
        (Some(before), Some(after)) if before != after => (
            format!("numeric library {subject}: {before} -> {after}"),
            Severity::Warning,
        ),
        (Some(before), Some(_)) if digests(old) != digests(new) => (
            format!("numeric library {subject}: same {before}, another build (sha256)"),
            Severity::Warning,
        ),
        _ => return,
    };
    let classified = match (old, new) {
        (Some(old), Some(new)) if old.len() == 1 && new.len() == 1 => {
            match (&old[0].version, &new[0].version) {
                (Some(a), Some(b)) if old[0].family == new[0].family => version::classify(a, b),
                _ => None,
            }
        }
        _ => None,
    };
    findings.push_version(
        Code::NumericLibrary,
        subject,
        before,
        after,
        classified,
        message,
    );
    let mapped = old
        .into_iter()
        .chain(new)
        .flatten()
        .any(|library| library.loaded);
    if let Some(finding) = findings.0.last_mut() {
        finding.severity = severity;
        finding.loaded = mapped.then_some(true);
    }
}

/// The features whose difference is a warning: fused multiply-add and AVX-512 change the
/// rounding and the kernels BLAS picks.
fn decisive(feature: &str) -> bool {
    feature == "fma" || feature.starts_with("avx512")
}

fn diff_cpu(old: &Cpu, new: &Cpu, findings: &mut Findings) {
    let (before, after): (BTreeSet<&String>, BTreeSet<&String>) =
        (old.features.iter().collect(), new.features.iter().collect());
    if before != after {
        let gone: Vec<&str> = before.difference(&after).map(|f| f.as_str()).collect();
        let added: Vec<&str> = after.difference(&before).map(|f| f.as_str()).collect();
        let severity = if gone.iter().chain(&added).any(|f| decisive(f)) {
            Severity::Warning
        } else {
            Severity::Info
        };
        let mut parts = Vec::new();
        if !gone.is_empty() {
            parts.push(format!("without {}", gone.join(", ")));
        }
        if !added.is_empty() {
            parts.push(format!("with {}", added.join(", ")));
        }
        let join =
            |set: &BTreeSet<&String>| set.iter().map(|f| f.as_str()).collect::<Vec<_>>().join(" ");
        findings.push(
            Code::CpuFeatures,
            "features",
            Some(join(&before)),
            Some(join(&after)),
            format!("the target's CPU runs {}", parts.join(" and ")),
        );
        if let Some(finding) = findings.0.last_mut() {
            finding.severity = severity;
        }
    }
    if old.logical_cpus != new.logical_cpus {
        findings.push(
            Code::CpuFeatures,
            "logical-cpus",
            Some(old.logical_cpus.to_string()),
            Some(new.logical_cpus.to_string()),
            format!(
                "logical CPUs {} -> {} (thread pools default to them)",
                old.logical_cpus, new.logical_cpus
            ),
        );
    }
    if old.cpu_quota != new.cpu_quota {
        let show = |quota: Option<f64>| quota.map_or("none".to_string(), |q| q.to_string());
        findings.push(
            Code::CpuFeatures,
            "cpu-quota",
            Some(show(old.cpu_quota)),
            Some(show(new.cpu_quota)),
            format!(
                "CPU quota {} -> {}",
                show(old.cpu_quota),
                show(new.cpu_quota)
            ),
        );
    }
}

fn diff_kernels(old: &[Kernel], new: &[Kernel], findings: &mut Findings) {
    let new: BTreeMap<&str, &Kernel> = new.iter().map(|k| (k.name.as_str(), k)).collect();
    for kernel in old {
        let Some(other) = new.get(kernel.name.as_str()) else {
            continue;
        };
        if kernel.sha256 == other.sha256 {
            continue;
        }
        let single = kernel.name.ends_with("-f32");
        let (ulps, relative) = distance(&kernel.values, &other.values, single);
        findings.push(
            Code::NumericsKernel,
            &kernel.name,
            Some(kernel.sha256.clone()),
            Some(other.sha256.clone()),
            format!(
                "kernel {} gives other bits: up to {ulps} ulp, max relative error {relative:.3e} over its sampled values",
                kernel.name
            ),
        );
    }
}

/// The largest ulp distance (of float32 values when `single`) and relative error between
/// two samples of one kernel.
fn distance(old: &[f64], new: &[f64], single: bool) -> (u64, f64) {
    let ordered = |value: f64| {
        let bits = if single {
            i64::from((value as f32).to_bits() as i32)
        } else {
            value.to_bits() as i64
        };
        let sign = if single {
            i64::from(i32::MIN)
        } else {
            i64::MIN
        };
        if bits < 0 {
            sign - bits
        } else {
            bits
        }
    };
    old.iter()
        .zip(new)
        .fold((0, 0.0), |(ulps, relative), (a, b)| {
            let distance = ordered(*a).abs_diff(ordered(*b));
            let scale = a.abs().max(f64::MIN_POSITIVE);
            (
                ulps.max(distance),
                f64::max(relative, (a - b).abs() / scale),
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ulps_between_neighbours() {
        let next = f64::from_bits(1.0f64.to_bits() + 3);
        assert_eq!(distance(&[1.0, 2.0], &[next, 2.0], false).0, 3);
        assert_eq!(distance(&[-0.0], &[0.0], false).0, 0);
        let next = f64::from(f32::from_bits(1.0f32.to_bits() + 2));
        assert_eq!(distance(&[1.0], &[next], true).0, 2);
    }
}
