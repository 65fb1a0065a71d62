//! `[numerics]`: the native libraries and the CPU behind the numbers.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// What computes the numbers: the native numeric libraries on the runtime, which of them
/// numpy and scipy load, the CPU (live runtimes only: an image has none), and with
/// `--numerics-check` the digests of a fixed set of kernels.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub struct Numerics {
    /// BLAS/LAPACK, OpenMP runtimes and the CUDA stack, sorted by path.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub libraries: Vec<NumericLibrary>,
    /// The CPU the runtime runs on (a dev snapshot, `python:PATH`); absent for images.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<Cpu>,
    /// `--numerics-check`: built-in kernels run with the runtime's numpy.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub kernels: Vec<Kernel>,
    /// The CUDA release each GPU framework of the runtime was built for.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub frameworks: Vec<Framework>,
}

impl Numerics {
    /// Whether there is nothing to write.
    pub fn is_empty(&self) -> bool {
        self.libraries.is_empty()
            && self.cpu.is_none()
            && self.kernels.is_empty()
            && self.frameworks.is_empty()
    }
}

/// `[[numerics.frameworks]]`: a distribution built for one CUDA release (torch, cupy, jax's
/// CUDA plugin), as its metadata says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub struct Framework {
    /// The distribution (PEP 503 name).
    pub name: String,
    /// Its version.
    pub version: String,
    /// The CUDA release it was built for: `13.2`, or a major alone (`12`) where only
    /// that is said.
    pub cuda: String,
    /// What says so: the exact pin of its CUDA runtime (`cuda-toolkit==13.2.2`,
    /// `nvidia-cuda-runtime-cu12==12.4.127`), its version's label (`+cu124`), or its name
    /// (`cupy-cuda12x`).
    pub from: String,
}

/// `[[numerics.libraries]]`: one native numeric library.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub struct NumericLibrary {
    /// `openblas`, `mkl`, `blis`, `flexiblas`, `reference-blas`, `reference-lapack`,
    /// `atlas`, `libgomp`, `libiomp5`, `libomp`, and the CUDA libraries' ([`CUDA_FAMILIES`]):
    /// `cudart`, `cublas`, `cudnn`, `nccl`, `cufft`, `cufile`, `torch-cuda`, ….
    pub family: String,
    /// Its version: the one the library reports inside (`OpenBLAS 0.3.27`), else the one
    /// its file name or soname gives, else its system package's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// `pthread`, `openmp` or `serial`, where the name or the library tells.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threading: Option<String>,
    /// Its path in the runtime, symlinks (alternatives) resolved.
    pub path: String,
    /// `sha256:` of its bytes (from the distribution's RECORD for a vendored copy).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// The distribution (PEP 503 name) or system package that ships it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shipped_by: Option<String>,
    /// Who loads it: `numpy`, `scipy` (read from their extensions' `DT_NEEDED`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub loaded_by: Vec<String>,
    /// Whether a traced golden run mapped it (absent: none did, or no run was traced).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub loaded: bool,
    /// The GPU code compiled into a CUDA library (its `.nv_fatbin`), when it has any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu: Option<GpuCode>,
}

/// `[numerics.libraries.gpu]`: the architectures a CUDA library's kernels are compiled for.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub struct GpuCode {
    /// Machine code (SASS), by architecture: `sm_80` runs on GPUs of compute capability
    /// 8.0 and, within the same major, newer (8.6, 8.9).
    #[serde(default)]
    pub sass: Vec<String>,
    /// PTX, by virtual architecture: `compute_90` is compiled by the driver, at first
    /// start, for any GPU of compute capability 9.0 or newer.
    #[serde(default)]
    pub ptx: Vec<String>,
    /// Which of those only some of its fatbins have (information: a library is judged by
    /// what any of them has).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub partial: Vec<String>,
}

/// The families of CUDA libraries: NVIDIA's (`nvidia-*` wheels, a CUDA toolkit, conda's)
/// and a framework's own GPU kernels (torch's `libtorch_cuda.so`, onnxruntime-gpu's CUDA
/// provider).
pub const CUDA_FAMILIES: &[&str] = &[
    "cudart",
    "cublas",
    "cudnn",
    "nccl",
    "cufft",
    "curand",
    "cusparse",
    "cusolver",
    "cufile",
    "nvrtc",
    "nvjitlink",
    "torch-cuda",
    "c10-cuda",
    "onnxruntime-cuda",
];

impl NumericLibrary {
    /// What the library does, for comparing two runtimes' libraries: `blas` (OpenBLAS,
    /// MKL, BLIS, FlexiBLAS, ATLAS, reference BLAS), `lapack` (any `liblapack.so`, whoever
    /// provides it), `openmp`, `cuda-runtime`, and each other CUDA library's family
    /// (`cublas`, `cudnn`, `nccl`, …: [`CUDA_FAMILIES`]).
    pub fn role(&self) -> &'static str {
        let name = self.path.rsplit('/').next().unwrap_or_default();
        if name.starts_with("liblapack") {
            return "lapack";
        }
        match self.family.as_str() {
            "reference-lapack" => "lapack",
            "libgomp" | "libiomp5" | "libomp" => "openmp",
            "cudart" => "cuda-runtime",
            family => CUDA_FAMILIES
                .iter()
                .find(|known| **known == family)
                .copied()
                .unwrap_or("blas"),
        }
    }
}

/// `[numerics.cpu]`: what thread pools and kernels see.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub struct Cpu {
    /// `model name` of `/proc/cpuinfo`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// `vendor_id`, e.g. `GenuineIntel`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vendor: Option<String>,
    /// The ISA features that change float results (`sse4_2`, `avx`, `avx2`, `fma`,
    /// `avx512f` and family, `amx_*`; `asimd`, `sve` on Arm), sorted.
    #[serde(default)]
    pub features: Vec<String>,
    /// Logical CPUs (what thread pools default to).
    pub logical_cpus: u32,
    /// The cgroup's CPU quota in CPUs (`cpu.max`), when one is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_quota: Option<f64>,
}

/// `[[numerics.kernels]]`: one built-in kernel's result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub struct Kernel {
    /// `matmul-f64`, `exp-f64`, `solve-f64`, …
    pub name: String,
    /// `sha256:` of the result's bytes: equal digests are bit-exact results.
    pub sha256: String,
    /// Up to 16 values of the result, evenly spaced, to measure a difference by.
    pub values: Vec<f64>,
}
