//! The CUDA stack against the deploy nodes and against the baseline's.
//!
//! - `cuda-driver`: the CUDA runtime a runtime ships needs an NVIDIA driver at least as new
//!   as its release's minimum; nodes with an older driver fail at start-up ("CUDA driver
//!   version is insufficient for CUDA runtime version"). The nodes' driver comes from
//!   `[deploy] driver` or `--driver`; the runtime's CUDA from its `cudart` libraries
//!   (`[[numerics.libraries]]`, whose version is the soname's major: `libcudart.so.12`),
//!   and from the frameworks built for a CUDA whose runtime library was not found
//!   (`[[numerics.frameworks]]`).
//! - `gpu-arch`: a CUDA library whose GPU code (`[numerics.libraries.gpu]`) has no machine
//!   code that runs on a deploy GPU (`[deploy] gpu`, `--gpu`) and no PTX the driver can
//!   compile for it fails at its first kernel ("no kernel image is available for execution
//!   on the device"); PTX alone runs after the driver compiles it at first start (warning).
//! - `gpu-library`: a CUDA library of the target lost GPU architectures the baseline's had,
//!   or a framework is built for another CUDA release.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use super::{Code, Finding, Findings, Severity};
use crate::lock::{GpuCode, Lock, NumericLibrary};

/// The oldest Linux driver each CUDA major release runs on, under NVIDIA's minor version
/// compatibility: the one table. Source: NVIDIA, "CUDA Toolkit Release Notes", table
/// "CUDA Toolkit and Minimum Required Driver Version for CUDA Minor Version Compatibility"
/// (<https://docs.nvidia.com/cuda/cuda-toolkit-release-notes/>).
const MINIMUM_DRIVER: &[(u32, &str)] = &[(11, "450.80.02"), (12, "525.60.13"), (13, "580")];

/// An NVIDIA driver version, as `nvidia-smi` prints it: `550.54.15`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DriverVersion {
    parts: Vec<u32>,
    text: String,
}

impl FromStr for DriverVersion {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let parts: Option<Vec<u32>> = text.split('.').map(|part| part.parse().ok()).collect();
        match parts {
            Some(parts)
                if (1..=4).contains(&parts.len())
                    && text.bytes().all(|b| b.is_ascii_digit() || b == b'.') =>
            {
                Ok(DriverVersion {
                    parts,
                    text: text.to_string(),
                })
            }
            _ => Err(format!(
                "`{text}` is not an NVIDIA driver version: give it as `nvidia-smi` prints it \
                 (`550.54.15`)"
            )),
        }
    }
}

impl<'de> serde::Deserialize<'de> for DriverVersion {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // `driver = 550` is a driver too: TOML reads it as a number.
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = String;
            fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
                formatter.write_str("an NVIDIA driver version such as \"550.54.15\"")
            }
            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<String, E> {
                Ok(text.to_string())
            }
            fn visit_i64<E: serde::de::Error>(self, number: i64) -> Result<String, E> {
                Ok(number.to_string())
            }
            fn visit_u64<E: serde::de::Error>(self, number: u64) -> Result<String, E> {
                Ok(number.to_string())
            }
        }
        let text = deserializer.deserialize_any(Visitor)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

impl fmt::Display for DriverVersion {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.text)
    }
}

impl DriverVersion {
    /// Whether this driver is older than `other`, part by part (a missing part is 0).
    fn older_than(&self, other: &DriverVersion) -> bool {
        let length = self.parts.len().max(other.parts.len());
        let part = |parts: &[u32], at: usize| parts.get(at).copied().unwrap_or(0);
        (0..length)
            .map(|at| part(&self.parts, at).cmp(&part(&other.parts, at)))
            .find(|order| order.is_ne())
            .is_some_and(|order| order.is_lt())
    }
}

/// The oldest driver CUDA release `major` runs on, by [`MINIMUM_DRIVER`].
fn minimum_driver(major: u32) -> Option<DriverVersion> {
    MINIMUM_DRIVER
        .iter()
        .find(|(release, _)| *release == major)
        .and_then(|(_, minimum)| minimum.parse().ok())
}

/// The major of a version such as `12`, `13.2` or `12.4.127`.
fn major_of(version: &str) -> Option<u32> {
    version.split('.').next()?.parse().ok()
}

/// The `cuda-driver` findings of `target` on nodes with `driver`: one per CUDA runtime
/// library whose release needs a newer one, and one per framework built for such a release
/// whose runtime library was not found (a CUDA runtime it brings some other way).
pub(crate) fn driver_findings(target: &Lock, driver: &DriverVersion) -> Vec<Finding> {
    let mut findings = Vec::new();
    let runtimes: Vec<(&NumericLibrary, u32)> = target
        .numerics
        .libraries
        .iter()
        .filter(|library| library.family == "cudart")
        .filter_map(|library| Some((library, major_of(library.version.as_deref()?)?)))
        .collect();
    for &(library, major) in &runtimes {
        let Some(minimum) = minimum_driver(major).filter(|minimum| driver.older_than(minimum))
        else {
            continue;
        };
        let shipped = library
            .shipped_by
            .as_deref()
            .map(|by| format!(", shipped by {by}"))
            .unwrap_or_default();
        let message = format!(
            "{} (CUDA {major}{shipped}) needs an NVIDIA driver {minimum} or newer, and the \
             deploy nodes have {driver}: deploy to nodes with a newer driver, or use a build \
             for an older CUDA",
            library.path
        );
        findings.push(Finding::new(
            Code::CudaDriver,
            &library.path,
            Some(format!("driver {driver}")),
            Some(format!("CUDA {major} (driver {minimum} or newer)")),
            message,
        ));
    }
    for framework in &target.numerics.frameworks {
        let Some(major) = major_of(&framework.cuda) else {
            continue;
        };
        if runtimes.iter().any(|(_, found)| *found == major) {
            continue;
        }
        let Some(minimum) = minimum_driver(major).filter(|minimum| driver.older_than(minimum))
        else {
            continue;
        };
        let message = format!(
            "{} {} is built for CUDA {} ({}) and needs an NVIDIA driver {minimum} or newer, \
             and the deploy nodes have {driver}: deploy to nodes with a newer driver, or \
             install a build for an older CUDA",
            framework.name, framework.version, framework.cuda, framework.from
        );
        findings.push(Finding::new(
            Code::CudaDriver,
            &framework.name,
            Some(format!("driver {driver}")),
            Some(format!(
                "CUDA {} (driver {minimum} or newer)",
                framework.cuda
            )),
            message,
        ));
    }
    findings
}

/// A GPU architecture of the deploy nodes: `sm_80`, or the compute capability `8.0` as
/// `nvidia-smi --query-gpu=compute_cap` prints it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct GpuArch(u32);

impl FromStr for GpuArch {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let number = match text.split_once('.') {
            // `8.6` is sm_86, `12.0` sm_120.
            Some((major, minor)) if minor.len() == 1 => digits(major)
                .zip(digits(minor))
                .map(|(major, minor)| major * 10 + minor),
            Some(_) => None,
            None => text.strip_prefix("sm_").and_then(digits),
        };
        match number {
            Some(number) if (10..10_000).contains(&number) => Ok(GpuArch(number)),
            _ => Err(format!(
                "`{text}` is not a GPU architecture: give it as `sm_80`, or as the compute \
                 capability `nvidia-smi --query-gpu=compute_cap` prints (`8.0`)"
            )),
        }
    }
}

fn digits(text: &str) -> Option<u32> {
    (!text.is_empty() && text.len() <= 4 && text.bytes().all(|b| b.is_ascii_digit()))
        .then(|| text.parse().ok())
        .flatten()
}

impl<'de> serde::Deserialize<'de> for GpuArch {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

impl fmt::Display for GpuArch {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "sm_{}", self.0)
    }
}

/// How a library's GPU code reaches a GPU. A library is judged by what any of its kernels
/// has (`partial` is information: the fatbins of arch-specific kernels, `sm_90a`, read as
/// `sm_90`, would make every other architecture look partial).
#[derive(Debug, PartialEq, Eq)]
enum Reach {
    /// Machine code that runs on it.
    Sass,
    /// Only PTX, which the driver compiles for it at first start.
    Ptx(String),
    /// Nothing runs on it.
    None,
}

/// The number of `sm_86` or `compute_90`.
fn number_of(name: &str) -> Option<u32> {
    name.strip_prefix("sm_")
        .or_else(|| name.strip_prefix("compute_"))?
        .parse()
        .ok()
}

/// Whether SASS for `code` runs on `gpu`: the same major, and not newer (sm_80's code runs
/// on an sm_86).
fn sass_runs(code: &str, gpu: GpuArch) -> bool {
    number_of(code).is_some_and(|number| number / 10 == gpu.0 / 10 && number <= gpu.0)
}

/// Whether the driver can compile PTX for `code` for `gpu`: any virtual architecture at or
/// below it.
fn ptx_runs(code: &str, gpu: GpuArch) -> bool {
    number_of(code).is_some_and(|number| number <= gpu.0)
}

fn reach(code: &GpuCode, gpu: GpuArch) -> Reach {
    if code.sass.iter().any(|sass| sass_runs(sass, gpu)) {
        return Reach::Sass;
    }
    match code.ptx.iter().find(|ptx| ptx_runs(ptx, gpu)) {
        Some(ptx) => Reach::Ptx(ptx.clone()),
        None => Reach::None,
    }
}

/// `sm_75, sm_80 and PTX compute_90`: what a library's GPU code is.
fn summary(code: &GpuCode) -> String {
    let mut text = code.sass.join(", ");
    if !code.ptx.is_empty() {
        if !text.is_empty() {
            text.push_str(" and ");
        }
        text.push_str(&format!("PTX {}", code.ptx.join(", ")));
    }
    if text.is_empty() {
        text.push_str("no GPU code");
    }
    text
}

fn shipped(library: &NumericLibrary) -> String {
    library
        .shipped_by
        .as_deref()
        .map(|by| format!(" (shipped by {by})"))
        .unwrap_or_default()
}

/// The `gpu-arch` findings of `target` on nodes with the GPUs `gpus`: one per CUDA library
/// and GPU its code does not run on (error), or reaches only as PTX (warning); those of the
/// libraries a traced golden run mapped first (the ones the model surely runs).
pub(crate) fn arch_findings(target: &Lock, gpus: &[GpuArch]) -> Vec<Finding> {
    let mut findings = Vec::new();
    for library in &target.numerics.libraries {
        let Some(code) = &library.gpu else {
            continue;
        };
        for &gpu in gpus {
            let (severity, message) = match reach(code, gpu) {
                Reach::Sass => continue,
                Reach::Ptx(ptx) => (
                    Severity::Warning,
                    format!(
                        "{}{} has no machine code for {gpu} GPUs, only PTX: the driver \
                         compiles its {ptx} for them at first start, which takes minutes for a \
                         large library (cached in ~/.nv/ComputeCache); install a build compiled \
                         for {gpu}, or warm the cache in the image",
                        library.path,
                        shipped(library)
                    ),
                ),
                Reach::None => (
                    Severity::Error,
                    format!(
                        "{}{} has GPU code for {}, none of which runs on {gpu} GPUs: its first \
                         kernel fails with \"no kernel image is available for execution on the \
                         device\"; install a build compiled for {gpu}, or deploy to nodes \
                         with GPUs it supports",
                        library.path,
                        shipped(library),
                        summary(code)
                    ),
                ),
            };
            let mut finding = Finding::new(
                Code::GpuArch,
                &library.path,
                Some(gpu.to_string()),
                Some(summary(code)),
                message,
            );
            finding.severity = severity;
            // A library a traced golden run mapped is one the model runs for sure.
            finding.loaded = library.loaded.then_some(true);
            findings.push(finding);
        }
    }
    findings.sort_by_key(|finding| finding.loaded != Some(true));
    findings
}

/// The findings of the deploy nodes' driver and GPUs (`[deploy]`, `--driver`, `--gpu`)
/// for `target`.
pub(crate) fn deploy_findings(
    target: &Lock,
    driver: Option<&DriverVersion>,
    gpus: &[GpuArch],
) -> Vec<Finding> {
    let mut findings = driver
        .map(|driver| driver_findings(target, driver))
        .unwrap_or_default();
    findings.extend(arch_findings(target, gpus));
    findings
}

/// A CUDA library with GPU code: who ships it (`system` when no distribution of the lock
/// does), its file name, and the library.
type Coded<'a> = (&'a str, &'a str, &'a NumericLibrary, &'a GpuCode);

fn with_gpu_code(lock: &Lock) -> Vec<Coded<'_>> {
    lock.numerics
        .libraries
        .iter()
        .filter_map(|library| {
            let code = library.gpu.as_ref()?;
            let owner = library
                .shipped_by
                .as_deref()
                .filter(|owner| lock.packages.iter().any(|package| package.name == *owner))
                .unwrap_or("system");
            let name = library.path.rsplit('/').next().unwrap_or_default();
            Some((owner, name, library, code))
        })
        .collect()
}

/// The baseline's and the target's CUDA libraries paired: by who ships them and file name,
/// else by file name where each runtime has one of that name (`libcufile.so.0` of
/// `nvidia-cufile-cu12` in dev, of `nvidia-cufile` in the image: CUDA 12 against 13).
fn paired<'a>(old: &[Coded<'a>], new: &[Coded<'a>]) -> Vec<(Coded<'a>, Coded<'a>)> {
    let mut pairs = Vec::new();
    let (mut old_left, mut new_left) = (Vec::new(), Vec::new());
    for &before in old {
        match new
            .iter()
            .find(|after| (after.0, after.1) == (before.0, before.1))
        {
            Some(&after) => pairs.push((before, after)),
            None => old_left.push(before),
        }
    }
    for &after in new {
        if !old
            .iter()
            .any(|before| (before.0, before.1) == (after.0, after.1))
        {
            new_left.push(after);
        }
    }
    let named = |list: &[Coded<'a>], name: &str| -> Vec<Coded<'a>> {
        list.iter()
            .filter(|coded| coded.1 == name)
            .copied()
            .collect()
    };
    for &before in &old_left {
        if let ([_], [after]) = (
            &named(&old_left, before.1)[..],
            &named(&new_left, before.1)[..],
        ) {
            pairs.push((before, *after));
        }
    }
    pairs
}

/// `gpu-library`: each framework of both runtimes built for another CUDA release (its
/// kernels, cuDNN and NCCL change with it).
pub(super) fn diff_frameworks(baseline: &Lock, target: &Lock, findings: &mut Findings) {
    for after in &target.numerics.frameworks {
        let Some(before) = baseline
            .numerics
            .frameworks
            .iter()
            .find(|before| before.name == after.name)
        else {
            continue;
        };
        if before.cuda == after.cuda {
            continue;
        }
        let mut finding = Finding::new(
            Code::GpuLibrary,
            &after.name,
            Some(format!("CUDA {}", before.cuda)),
            Some(format!("CUDA {}", after.cuda)),
            format!(
                "{} is built for CUDA {} in the baseline ({} {}: {}) and for CUDA {} in the \
                 target ({} {}: {}): its kernels, and the cuDNN and NCCL it needs, change \
                 with it",
                after.name,
                before.cuda,
                before.name,
                before.version,
                before.from,
                after.cuda,
                after.name,
                after.version,
                after.from
            ),
        );
        finding.severity = Severity::Warning;
        findings.0.push(finding);
    }
}

/// Architecture names, SASS before PTX, each by number (`sm_90` before `sm_100`).
fn in_order<'a>(names: impl Iterator<Item = &'a String>) -> Vec<&'a str> {
    let mut names: Vec<&str> = names.map(String::as_str).collect();
    names.sort_by_key(|name| (name.starts_with("compute_"), number_of(name)));
    names
}

/// `gpu-library`: each CUDA library of both runtimes whose GPU architectures differ; lost
/// ones are a warning (GPUs the baseline ran on may not run the target), gained ones
/// information.
pub(super) fn diff_gpu_code(baseline: &Lock, target: &Lock, findings: &mut Findings) {
    let (old, new) = (with_gpu_code(baseline), with_gpu_code(target));
    for ((_, _, _, before), (owner, name, library, after)) in paired(&old, &new) {
        let names = |code: &GpuCode| -> BTreeSet<String> {
            code.sass.iter().chain(&code.ptx).cloned().collect()
        };
        let (had, has) = (names(before), names(after));
        if had == has {
            continue;
        }
        let lost = in_order(had.difference(&has));
        let gained = in_order(has.difference(&had));
        let (severity, change) = match (lost.is_empty(), gained.is_empty()) {
            (true, _) => (Severity::Info, format!("gained {}", gained.join(", "))),
            (false, gained_none) => {
                let gained = match gained_none {
                    true => String::new(),
                    false => format!(" and gained {}", gained.join(", ")),
                };
                let lost = lost.join(", ");
                (
                    Severity::Warning,
                    format!(
                        "lost {lost}{gained}: GPUs that only the lost code ran on cannot run \
                         the target"
                    ),
                )
            }
        };
        let mut finding = Finding::new(
            Code::GpuLibrary,
            &format!("{owner}:{name}"),
            Some(summary(before)),
            Some(summary(after)),
            format!(
                "{}{}: its GPU code {change} (baseline: {}; target: {})",
                library.path,
                shipped(library),
                summary(before),
                summary(after)
            ),
        );
        finding.severity = severity;
        finding.loaded = library.loaded.then_some(true);
        findings.0.push(finding);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_libraries_a_golden_run_mapped_come_first() {
        let library = |path: &str, loaded: bool| NumericLibrary {
            family: "cufile".into(),
            version: None,
            threading: None,
            path: path.into(),
            sha256: None,
            shipped_by: None,
            loaded_by: Vec::new(),
            loaded,
            gpu: Some(GpuCode {
                sass: vec!["sm_90".into()],
                ..GpuCode::default()
            }),
        };
        let mut lock: Lock = toml::from_str(
            "[envlock]\nschema = 1\ncreated-by = \"test\"\n[source]\nkind = \"python\"\n\
             [platform]\nos = \"linux\"\narch = \"x86_64\"\n[env]\n",
        )
        .unwrap();
        lock.numerics.libraries = vec![library("/a.so", false), library("/b.so", true)];
        let gpu = "sm_80".parse::<GpuArch>().unwrap();
        let found = arch_findings(&lock, &[gpu]);
        let order: Vec<(&str, Option<bool>)> = found
            .iter()
            .map(|finding| (finding.subject.as_str(), finding.loaded))
            .collect();
        assert_eq!(order, [("/b.so", Some(true)), ("/a.so", None)]);
    }

    #[test]
    fn gpu_architectures_read_as_sm_or_compute_capability() {
        let arch = |text: &str| text.parse::<GpuArch>().map(|arch| arch.to_string());
        assert_eq!(arch("sm_80").unwrap(), "sm_80");
        assert_eq!(arch("8.6").unwrap(), "sm_86");
        assert_eq!(arch("12.0").unwrap(), "sm_120");
        for bad in [
            "", "80", "sm80", "sm_", "sm_8x", "8.10", "8.", ".8", "a100", "sm_1",
        ] {
            assert!(arch(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn sass_runs_within_its_major_and_ptx_at_or_above_it() {
        // nvidia-cufile 1.20's libcufile.so.0, as its fatbin says.
        let cufile = GpuCode {
            sass: ["sm_75", "sm_80", "sm_86", "sm_87", "sm_89", "sm_90"]
                .map(String::from)
                .to_vec(),
            ptx: vec!["compute_90".into()],
            partial: Vec::new(),
        };
        let gpu = |text: &str| text.parse::<GpuArch>().unwrap();
        assert_eq!(reach(&cufile, gpu("sm_70")), Reach::None);
        assert_eq!(reach(&cufile, gpu("sm_80")), Reach::Sass);
        // An L4 (8.9) runs sm_89's; an A10 (8.6) sm_86's; an sm_88 would run sm_87's.
        assert_eq!(reach(&cufile, gpu("8.8")), Reach::Sass);
        assert_eq!(
            reach(&cufile, gpu("sm_100")),
            Reach::Ptx("compute_90".into())
        );
        // Without the PTX, a Blackwell runs nothing; with it only in some kernels, some.
        let no_ptx = GpuCode {
            ptx: Vec::new(),
            ..cufile.clone()
        };
        assert_eq!(reach(&no_ptx, gpu("sm_100")), Reach::None);
        // What only some kernels have still counts: `partial` is information.
        let partial = GpuCode {
            partial: vec!["compute_90".into()],
            ..cufile.clone()
        };
        assert_eq!(
            reach(&partial, gpu("sm_120")),
            Reach::Ptx("compute_90".into())
        );
    }

    #[test]
    fn driver_versions_read_and_order_as_nvidia_smi_prints_them() {
        let version = |text: &str| text.parse::<DriverVersion>().unwrap();
        assert!(version("535.104.05").older_than(&version("580")));
        assert!(!version("580.65.06").older_than(&version("580")));
        assert!(version("525.60.12").older_than(&version("525.60.13")));
        assert!(!version("550").older_than(&version("525.60.13")));
        for bad in ["", "abc", "550..1", "550.54.15.1.2", "-1", "+550", "550.+1"] {
            assert!(bad.parse::<DriverVersion>().is_err(), "{bad}");
        }
        // Every minimum of the table reads.
        for (_, minimum) in MINIMUM_DRIVER {
            assert!(minimum.parse::<DriverVersion>().is_ok());
        }
    }
}
