//! `cuda-driver`: the CUDA runtime a runtime ships needs an NVIDIA driver at least as new as
//! its release's minimum; nodes with an older driver fail at start-up ("CUDA driver version
//! is insufficient for CUDA runtime version"). The deploy nodes' driver comes from
//! `[deploy] driver` or `--driver`; the runtime's CUDA from its `cudart` libraries
//! (`[[numerics.libraries]]`, whose version is the soname's major: `libcudart.so.12`).

use std::fmt;
use std::str::FromStr;

use super::{Code, Finding};
use crate::lock::Lock;

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

/// The `cuda-driver` findings of `target` on nodes with `driver`: one per CUDA runtime
/// library whose release needs a newer one.
pub(crate) fn driver_findings(target: &Lock, driver: &DriverVersion) -> Vec<Finding> {
    let mut findings = Vec::new();
    for library in target
        .numerics
        .libraries
        .iter()
        .filter(|library| library.family == "cudart")
    {
        let Some(major) = library
            .version
            .as_deref()
            .and_then(|version| version.split('.').next())
            .and_then(|major| major.parse::<u32>().ok())
        else {
            continue;
        };
        let Some(minimum) = MINIMUM_DRIVER
            .iter()
            .find(|(release, _)| *release == major)
            .and_then(|(_, minimum)| minimum.parse::<DriverVersion>().ok())
        else {
            continue;
        };
        if !driver.older_than(&minimum) {
            continue;
        }
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
    findings
}

#[cfg(test)]
mod tests {
    use super::*;

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
