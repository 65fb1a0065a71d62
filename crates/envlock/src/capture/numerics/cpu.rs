//! The CPU of a live runtime: model, vendor, the ISA features that change float results,
//! the logical CPU count and the cgroup's quota (what thread pools default to).

use crate::lock::Cpu;

/// Features that change results: wider or fused arithmetic picks other kernels.
const FEATURES: &[&str] = &[
    "sse4_2",
    "avx",
    "avx2",
    "fma",
    "f16c",
    "avx512f",
    "avx512dq",
    "avx512cd",
    "avx512bw",
    "avx512vl",
    "avx512ifma",
    "avx512vbmi",
    "avx512_vnni",
    "avx512_bf16",
    "avx512_fp16",
    "amx_tile",
    "amx_bf16",
    "amx_int8",
    "asimd",
    "asimdhp",
    "sve",
    "sve2",
];

/// This machine's CPU, from `/proc/cpuinfo` and the cgroup's `cpu.max`.
pub(crate) fn host_cpu() -> Option<Cpu> {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    let quota = std::fs::read_to_string("/sys/fs/cgroup/cpu.max").ok();
    Some(parse(&cpuinfo, quota.as_deref()))
}

fn parse(cpuinfo: &str, cpu_max: Option<&str>) -> Cpu {
    let field = |key: &str| {
        cpuinfo.lines().find_map(|line| {
            let (name, value) = line.split_once(':')?;
            (name.trim() == key).then(|| value.trim().to_string())
        })
    };
    let flags = field("flags")
        .or_else(|| field("Features"))
        .unwrap_or_default();
    let mut features: Vec<String> = flags
        .split_whitespace()
        .filter(|flag| FEATURES.contains(flag))
        .map(str::to_string)
        .collect();
    features.sort();
    features.dedup();
    let logical_cpus = cpuinfo
        .lines()
        .filter(|line| {
            line.split(':')
                .next()
                .is_some_and(|key| key.trim() == "processor")
        })
        .count();
    Cpu {
        model: field("model name").or_else(|| field("CPU part")),
        vendor: field("vendor_id").or_else(|| field("CPU implementer")),
        features,
        logical_cpus: u32::try_from(logical_cpus.max(1)).unwrap_or(u32::MAX),
        cpu_quota: cpu_max.and_then(quota),
    }
}

/// `cpu.max`'s `QUOTA PERIOD` as CPUs; `max` is no quota.
fn quota(text: &str) -> Option<f64> {
    let mut parts = text.split_whitespace();
    let quota: f64 = parts.next()?.parse().ok()?;
    let period: f64 = parts.next()?.parse().ok()?;
    (period > 0.0).then(|| (quota / period * 100.0).round() / 100.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpuinfo_and_quota() {
        let cpuinfo = "processor\t: 0\nvendor_id\t: GenuineIntel\nmodel name\t: Xeon\n\
                       flags\t\t: fpu sse4_2 avx avx2 fma avx512f\n\nprocessor\t: 1\n";
        let cpu = parse(cpuinfo, Some("200000 100000\n"));
        assert_eq!(cpu.features, ["avx", "avx2", "avx512f", "fma", "sse4_2"]);
        assert_eq!(cpu.logical_cpus, 2);
        assert_eq!(cpu.cpu_quota, Some(2.0));
        assert_eq!(cpu.vendor.as_deref(), Some("GenuineIntel"));
        assert_eq!(parse(cpuinfo, Some("max 100000")).cpu_quota, None);
    }
}
