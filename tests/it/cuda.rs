//! The CUDA stack, from NVIDIA's real wheels on PyPI: `cuda-driver` (`nvidia-cuda-runtime-cu12`'s
//! `libcudart.so.12` against deploy nodes' drivers, from a flag and from `envlock.toml`), the
//! GPU code of `nvidia-cufile`'s libraries against NVIDIA's `cuobjdump` and deploy GPUs
//! (`gpu-arch`) and between CUDA 12 and 13 (`gpu-library`), and the CUDA torch's real wheels
//! were built for.

use std::collections::{BTreeMap, BTreeSet};

use crate::support::*;

/// The venv with NVIDIA's CUDA 12 runtime wheel (about 3 MB).
fn cuda12_venv() -> std::path::PathBuf {
    const PIN: &str = "nvidia-cuda-runtime-cu12==12.9.79";
    venv("cuda12", PIN, &[], |folder| pip_install(folder, &[PIN]))
}

/// `envlock diff dev.lock python:PYTHON ARGS…` in `dir`: exit code, the `cuda-driver`
/// findings (subject, severity, message) and stderr.
fn cuda_findings(dir: &std::path::Path, python: &std::path::Path, args: &[&str]) -> Findings {
    let target = format!("python:{}", python.display());
    coded(dir, ["dev.lock", &target], args, "cuda-driver")
}

#[test]
fn a_cuda_runtime_needs_the_driver_its_release_needs() {
    let python = cuda12_venv();
    let dir = tempfile::tempdir().unwrap();
    must(
        envlock()
            .args(["snapshot", "--python"])
            .arg(&python)
            .args(["-o", "dev.lock"])
            .current_dir(dir.path()),
    );
    let lock = std::fs::read_to_string(dir.path().join("dev.lock")).unwrap();
    assert!(lock.contains("family = \"cudart\""), "{lock}");

    // A node pool on 470 cannot run CUDA 12 (525.60.13 or newer).
    let (code, findings, stderr) = cuda_findings(dir.path(), &python, &["--driver", "470.82.01"]);
    assert_eq!(code, 1, "{stderr}");
    assert_eq!(findings.len(), 1, "{findings:?}");
    let (subject, severity, message) = &findings[0];
    assert!(
        subject.ends_with("nvidia/cuda_runtime/lib/libcudart.so.12"),
        "{subject}"
    );
    assert_eq!(severity, "error");
    assert!(
        message.contains("CUDA 12, shipped by nvidia-cuda-runtime-cu12")
            && message.contains("525.60.13 or newer")
            && message.contains("the deploy nodes have 470.82.01"),
        "{message}"
    );
    // 550 runs it; so does 525.60.13 itself.
    for driver in ["550.54.15", "525.60.13"] {
        let (code, findings, stderr) = cuda_findings(dir.path(), &python, &["--driver", driver]);
        assert_eq!((code, findings.len()), (0, 0), "{driver}: {stderr}");
    }
    // The same from envlock.toml, and the flag wins over it.
    std::fs::write(
        dir.path().join("envlock.toml"),
        "[deploy]\ndriver = \"470.82.01\"\n",
    )
    .unwrap();
    let (code, findings, _) = cuda_findings(dir.path(), &python, &[]);
    assert_eq!((code, findings.len()), (1, 1));
    let (code, findings, _) = cuda_findings(dir.path(), &python, &["--driver", "560.35.03"]);
    assert_eq!((code, findings.len()), (0, 0));
    // A major alone, as TOML reads `driver = 470`.
    std::fs::write(dir.path().join("envlock.toml"), "[deploy]\ndriver = 470\n").unwrap();
    let (code, findings, _) = cuda_findings(dir.path(), &python, &[]);
    assert_eq!((code, findings.len()), (1, 1));

    // A driver that is no version, from the flag or the file, and a typo'd key: exit 2.
    let (code, _, stderr) = cuda_findings(dir.path(), &python, &["--driver", "latest"]);
    assert_eq!(code, 2);
    assert!(
        stderr.contains("`latest` is not an NVIDIA driver version"),
        "{stderr}"
    );
    std::fs::write(
        dir.path().join("envlock.toml"),
        "[deploy]\ndriver = \"5x\"\n",
    )
    .unwrap();
    let (code, _, stderr) = cuda_findings(dir.path(), &python, &[]);
    assert_eq!(code, 2);
    assert!(
        stderr.contains("`5x` is not an NVIDIA driver version"),
        "{stderr}"
    );
    std::fs::write(
        dir.path().join("envlock.toml"),
        "[deploy]\ndrivers = \"550\"\n",
    )
    .unwrap();
    let (code, _, stderr) = cuda_findings(dir.path(), &python, &[]);
    assert_eq!(code, 2);
    assert!(stderr.contains("drivers"), "{stderr}");
}

/// NVIDIA's cuFile for CUDA 12 (its `libcufile.so.0` carries a fatbin), with NVIDIA's own
/// `cuobjdump` beside it: the oracle of what the fatbin holds.
fn cufile12_venv() -> std::path::PathBuf {
    const PINS: &[&str] = &[
        "nvidia-cufile-cu12==1.13.1.3",
        "nvidia-cuda-cuobjdump==13.5.37",
    ];
    venv("cufile12", &PINS.join(" "), &[], |folder| {
        pip_install(folder, PINS)
    })
}

/// What a lock says of the GPU code of its CUDA libraries: by file name, `(sass, ptx)`.
fn gpu_code(lock: &std::path::Path) -> BTreeMap<String, (Vec<String>, Vec<String>)> {
    let lock: toml::Value = toml::from_str(&std::fs::read_to_string(lock).unwrap()).unwrap();
    let strings = |value: &toml::Value| -> Vec<String> {
        value
            .as_array()
            .unwrap()
            .iter()
            .map(|item| item.as_str().unwrap().to_string())
            .collect()
    };
    lock["numerics"]["libraries"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|library| {
            let gpu = library.get("gpu")?;
            let path = library["path"].as_str().unwrap();
            Some((
                path.to_string(),
                (strings(&gpu["sass"]), strings(&gpu["ptx"])),
            ))
        })
        .collect()
}

/// What `cuobjdump --list-elf --list-ptx` lists of `library`: `(sass, ptx)`, named as the
/// lock names them (`libcufile.so.1.sm_80.cubin` is `sm_80`; `….sm_80.ptx` `compute_80`).
fn cuobjdump(venv: &std::path::Path, library: &str) -> (Vec<String>, Vec<String>) {
    let tool = venv.join("lib/python3.11/site-packages/nvidia/cu13/bin/cuobjdump");
    let output = std::process::Command::new(&tool)
        .args(["--list-elf", "--list-ptx", library])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    if stderr.contains("does not contain device code") {
        return (Vec::new(), Vec::new());
    }
    assert!(output.status.success(), "{output:?}");
    let (mut sass, mut ptx) = (BTreeSet::new(), BTreeSet::new());
    for line in String::from_utf8(output.stdout).unwrap().lines() {
        let arch = |suffix: &str| {
            let name = line.rsplit(' ').next()?.strip_suffix(suffix)?;
            let number = name.rsplit_once(".sm_")?.1;
            Some(number.parse::<u32>().unwrap())
        };
        if let Some(number) = arch(".cubin").filter(|_| line.starts_with("ELF file")) {
            sass.insert(number);
        } else if let Some(number) = arch(".ptx").filter(|_| line.starts_with("PTX file")) {
            ptx.insert(number);
        }
    }
    (
        sass.iter().map(|n| format!("sm_{n}")).collect(),
        ptx.iter().map(|n| format!("compute_{n}")).collect(),
    )
}

#[test]
fn gpu_code_is_what_nvidias_cuobjdump_lists() {
    let python = cufile12_venv();
    let venv = python.parent().unwrap().parent().unwrap();
    let dir = tempfile::tempdir().unwrap();
    must(
        envlock()
            .args(["snapshot", "--python"])
            .arg(&python)
            .args(["-o", "dev.lock"])
            .current_dir(dir.path()),
    );
    let code = gpu_code(&dir.path().join("dev.lock"));
    let cufile = code
        .iter()
        .find(|(path, _)| path.ends_with("nvidia/cufile/lib/libcufile.so.0"))
        .unwrap_or_else(|| panic!("{code:?}"));
    let expected = cuobjdump(venv, cufile.0);
    assert!(
        !expected.0.is_empty() && !expected.1.is_empty(),
        "{expected:?}"
    );
    assert_eq!(cufile.1, &expected);
    // Its RDMA companion has no device code, by either account.
    assert_eq!(code.len(), 1, "{code:?}");
    let rdma = cufile.0.replace("libcufile.so.0", "libcufile_rdma.so.1");
    assert_eq!(cuobjdump(venv, &rdma), (Vec::new(), Vec::new()));
}

/// The offline base with NVIDIA's CUDA 13 runtime and cuFile wheels.
fn cuda13_image() -> String {
    crate::docker::image_with(
        "cuda13",
        &["nvidia-cufile==1.17.1.22", "nvidia-cuda-runtime==13.5.37"],
    )
}

/// `envlock diff BASELINE TARGET ARGS…` in `dir` (no golden runs): exit code, the findings
/// of `code` (subject, severity, message) and stderr.
fn coded(dir: &std::path::Path, operands: [&str; 2], args: &[&str], code: &str) -> Findings {
    let run = run(envlock()
        .args(["diff", "--no-golden", "--format", "json"])
        .args(operands)
        .args(args)
        .current_dir(dir));
    if run.code == 2 {
        return (run.code, Vec::new(), run.stderr);
    }
    let report: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let findings = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|finding| finding["code"] == code)
        .map(|finding| {
            let text = |key: &str| finding[key].as_str().unwrap().to_string();
            (text("subject"), text("severity"), text("message"))
        })
        .collect();
    (run.code, findings, run.stderr)
}

type Findings = (i32, Vec<(String, String, String)>, String);

#[cfg_attr(not(envlock_docker), ignore = "needs a Docker engine")]
#[test]
fn an_images_gpu_code_against_the_deploy_nodes_and_the_dev_runtime() {
    crate::docker::need_engine();
    let image = cuda13_image();
    let dir = tempfile::tempdir().unwrap();
    // By exec, from the engine's files, and from the layers: the same GPU code.
    let modes: [&[&str]; 3] = [&[], &["--no-exec"], &["--no-exec", "--layers"]];
    let locks = modes.map(|mode| {
        let name = format!("image{}.lock", mode.len());
        must(
            envlock()
                .args(["snapshot", "--image", &image, "-o", &name])
                .args(mode)
                .current_dir(dir.path()),
        );
        gpu_code(&dir.path().join(name))
    });
    let cufile = locks[0]
        .iter()
        .find(|(path, _)| path.ends_with("nvidia/cu13/lib/libcufile.so.0"))
        .unwrap_or_else(|| panic!("{:?}", locks[0]));
    // NVIDIA's cuobjdump 13.5 refuses this build ("Invalid ELF"): what its fatbin holds is
    // what NVIDIA publishes for it, SASS sm_75 to sm_90 and PTX compute_90.
    let sass = ["sm_75", "sm_80", "sm_86", "sm_87", "sm_89", "sm_90"].map(String::from);
    assert_eq!(cufile.1, &(sass.to_vec(), vec!["compute_90".to_string()]));
    assert_eq!(locks[0], locks[1], "exec and engine static");
    assert_eq!(locks[0], locks[2], "exec and layered");

    let lock = ["image0.lock", "image0.lock"];
    // A V100 (sm_70) runs none of it: an error naming the library and what to do.
    let (status, found, stderr) = coded(dir.path(), lock, &["--gpu", "sm_70"], "gpu-arch");
    assert_eq!(status, 1, "{stderr}");
    assert_eq!(found.len(), 1, "{found:?}");
    let (subject, severity, message) = &found[0];
    assert!(subject.ends_with("nvidia/cu13/lib/libcufile.so.0"));
    assert_eq!(severity, "error");
    assert!(
        message.contains("(shipped by nvidia-cufile)")
            && message.contains("none of which runs on sm_70 GPUs")
            && message.contains("no kernel image is available"),
        "{message}"
    );
    // An A100 (8.0) and an L4 (8.9) run its SASS; a B200 (sm_100) only its PTX: a warning.
    let (status, found, _) = coded(dir.path(), lock, &["--gpu", "8.0,sm_89"], "gpu-arch");
    assert_eq!((status, found.len()), (0, 0));
    let (status, found, _) = coded(dir.path(), lock, &["--gpu", "sm_100"], "gpu-arch");
    assert_eq!(status, 0);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].1, "warning");
    assert!(found[0].2.contains("its compute_90"), "{}", found[0].2);
    // CUDA 13 needs a 580 driver: 535 fails the gate, 580 passes it.
    let (status, found, _) = coded(dir.path(), lock, &["--driver", "535.104.05"], "cuda-driver");
    assert_eq!((status, found.len()), (1, 1), "{found:?}");
    assert!(found[0].2.contains("CUDA 13"), "{}", found[0].2);
    let (status, found, _) = coded(dir.path(), lock, &["--driver", "580.65.06"], "cuda-driver");
    assert_eq!((status, found.len()), (0, 0));
    // The same GPUs from envlock.toml; an architecture that is none is exit 2, named.
    let config = |text: &str| std::fs::write(dir.path().join("envlock.toml"), text).unwrap();
    config("[deploy]\ngpu = [\"7.0\"]\n");
    let (status, found, _) = coded(dir.path(), lock, &[], "gpu-arch");
    assert_eq!((status, found.len()), (1, 1));
    config("[deploy]\ngpu = [\"sm_7\"]\n");
    for (args, bad) in [(&[][..], "sm_7"), (&["--gpu", "a100"][..], "a100")] {
        let (status, _, stderr) = coded(dir.path(), lock, args, "gpu-arch");
        assert_eq!(status, 2);
        let named = format!("`{bad}` is not a GPU architecture");
        assert!(stderr.contains(&named), "{stderr}");
    }
    std::fs::remove_file(dir.path().join("envlock.toml")).unwrap();

    // Dev on CUDA 12's cuFile, the image on CUDA 13's: Pascal and Volta code is gone.
    let python = cufile12_venv();
    must(
        envlock()
            .args(["snapshot", "--python"])
            .arg(&python)
            .args(["-o", "dev.lock"])
            .current_dir(dir.path()),
    );
    let (_, found, stderr) = coded(dir.path(), ["dev.lock", "image0.lock"], &[], "gpu-library");
    assert_eq!(found.len(), 1, "{found:?} {stderr}");
    let (subject, severity, message) = &found[0];
    assert_eq!(subject, "nvidia-cufile:libcufile.so.0");
    assert_eq!(severity, "warning");
    assert!(
        message.contains("lost sm_60, sm_61, sm_62, sm_70, sm_72, compute_80")
            && message.contains("gained sm_87, sm_89, sm_90, compute_90"),
        "{message}"
    );
    // The image's SBOM from envlock's export keeps the GPU code: as the baseline, dev is
    // the one that lost the newer architectures.
    must(
        envlock()
            .args([
                "export",
                "image0.lock",
                "--format",
                "cyclonedx",
                "-o",
                "image.cdx.json",
            ])
            .current_dir(dir.path()),
    );
    let operands = ["image.cdx.json", "dev.lock"];
    let (_, found, stderr) = coded(dir.path(), operands, &[], "gpu-library");
    assert_eq!(found.len(), 1, "{found:?} {stderr}");
    assert!(
        found[0].2.contains("lost sm_87, sm_89, sm_90, compute_90"),
        "{}",
        found[0].2
    );
}

/// Reads files out of a wheel on PyPI by HTTP range requests (its zip directory, then each
/// file's bytes), so that torch's 500 MB wheel gives its METADATA and `torch/version.py`
/// without being downloaded: `python3 -c WHEEL_FILES NAME VERSION OUT`.
const WHEEL_FILES: &str = r#"
import io, json, os, sys, urllib.request, zipfile
name, version, out = sys.argv[1:4]
index = urllib.request.Request(f"https://pypi.org/simple/{name}/",
                               headers={"Accept": "application/vnd.pypi.simple.v1+json"})
files = json.load(urllib.request.urlopen(index, timeout=60))["files"]
url = next(f["url"] for f in files if f["filename"].startswith(f"{name}-{version}-cp311-")
           and "manylinux" in f["filename"] and f["filename"].endswith("x86_64.whl"))
class Remote(io.RawIOBase):
    def __init__(self):
        head = urllib.request.Request(url, method="HEAD")
        self.size, self.at = int(urllib.request.urlopen(head, timeout=60).headers["Content-Length"]), 0
    def readable(self): return True
    def seekable(self): return True
    def tell(self): return self.at
    def seek(self, offset, whence=0):
        self.at = [offset, self.at + offset, self.size + offset][whence]
        return self.at
    def readinto(self, buffer):
        count = min(len(buffer), self.size - self.at)
        if count <= 0:
            return 0
        part = urllib.request.Request(url, headers={"Range": f"bytes={self.at}-{self.at + count - 1}"})
        data = urllib.request.urlopen(part, timeout=60).read()
        buffer[:len(data)] = data
        self.at += len(data)
        return len(data)
wheel = zipfile.ZipFile(io.BufferedReader(Remote(), 1 << 16))
for member in wheel.namelist():
    if member.endswith(".dist-info/METADATA") or member == f"{name}/version.py":
        os.makedirs(os.path.join(out, os.path.dirname(member)), exist_ok=True)
        with open(os.path.join(out, member), "wb") as handle:
            handle.write(wheel.read(member))
"#;

/// A venv holding what torch `version`'s real wheel installs as its metadata (its
/// dist-info's METADATA, and `torch/version.py`), read out of the wheel on PyPI: the files
/// the capture reads, without torch's gigabytes.
fn torch_metadata_venv(version: &str) -> std::path::PathBuf {
    venv(&format!("torch-{version}"), version, &[], |folder| {
        let site = site_packages(&folder.join("bin/python"));
        must(
            std::process::Command::new(system_python())
                .args(["-c", WHEEL_FILES, "torch", version])
                .arg(&site),
        );
    })
}

/// `cuda = '13.2'` of a torch `version.py`: the CUDA its build was compiled with.
fn version_py_cuda(python: &std::path::Path) -> String {
    let site = site_packages(python);
    let text = std::fs::read_to_string(site.join("torch/version.py")).unwrap();
    let line = text
        .lines()
        .find(|line| line.starts_with("cuda"))
        .unwrap_or_else(|| panic!("{text}"));
    line.rsplit('=')
        .next()
        .unwrap()
        .trim()
        .trim_matches('\'')
        .to_string()
}

#[test]
fn a_frameworks_cuda_is_what_its_real_wheel_says() {
    let dir = tempfile::tempdir().unwrap();
    let mut built_for = Vec::new();
    for (version, name) in [("2.5.1", "old.lock"), ("2.15.0", "new.lock")] {
        let python = torch_metadata_venv(version);
        must(
            envlock()
                .args(["snapshot", "--python"])
                .arg(&python)
                .args(["-o", name])
                .current_dir(dir.path()),
        );
        let lock: toml::Value =
            toml::from_str(&std::fs::read_to_string(dir.path().join(name)).unwrap()).unwrap();
        let framework = &lock["numerics"]["frameworks"][0];
        assert_eq!(framework["name"].as_str(), Some("torch"), "{lock:#?}");
        // What torch itself says it was compiled with (`torch.version.cuda`).
        assert_eq!(
            framework["cuda"].as_str().unwrap(),
            version_py_cuda(&python),
            "{framework:?}"
        );
        built_for.push(framework["from"].as_str().unwrap().to_string());
    }
    assert_eq!(
        built_for,
        ["nvidia-cuda-runtime-cu12==12.4.127", "cuda-toolkit==13.2.2"]
    );
    // Dev on torch 2.5.1 (CUDA 12.4), the target on 2.15.0 (CUDA 13.2), nodes on 535.
    let operands = ["old.lock", "new.lock"];
    let (_, found, stderr) = coded(dir.path(), operands, &[], "gpu-library");
    assert_eq!(found.len(), 1, "{found:?} {stderr}");
    assert_eq!(found[0].0, "torch");
    assert!(
        found[0].2.contains("built for CUDA 12.4 in the baseline")
            && found[0].2.contains("for CUDA 13.2 in the target"),
        "{}",
        found[0].2
    );
    let (status, found, _) = coded(
        dir.path(),
        operands,
        &["--driver", "535.104.05"],
        "cuda-driver",
    );
    assert_eq!((status, found.len()), (1, 1), "{found:?}");
    assert!(
        found[0]
            .2
            .contains("torch 2.15.0 is built for CUDA 13.2 (cuda-toolkit==13.2.2)")
            && found[0].2.contains("580 or newer"),
        "{}",
        found[0].2
    );
    let (_, found, _) = coded(
        dir.path(),
        operands,
        &["--driver", "580.65.06"],
        "cuda-driver",
    );
    assert!(found.is_empty(), "{found:?}");
}

#[test]
fn onnxruntime_gpu_says_its_cuda_through_its_cuda_extra() {
    // onnxruntime-gpu 1.31.1's real METADATA: `nvidia-cuda-runtime~=13.0; extra == "cuda"`.
    let python = venv("onnxruntime-gpu-1.31.1", "1.31.1", &[], |folder| {
        must(
            std::process::Command::new(system_python())
                .args(["-c", WHEEL_FILES, "onnxruntime_gpu", "1.31.1"])
                .arg(site_packages(&folder.join("bin/python"))),
        );
    });
    let dir = tempfile::tempdir().unwrap();
    must(
        envlock()
            .args(["snapshot", "--python"])
            .arg(&python)
            .args(["-o", "dev.lock"])
            .current_dir(dir.path()),
    );
    let text = std::fs::read_to_string(dir.path().join("dev.lock")).unwrap();
    let lock: toml::Value = toml::from_str(&text).unwrap();
    let framework = &lock["numerics"]["frameworks"][0];
    assert_eq!(
        framework["name"].as_str(),
        Some("onnxruntime-gpu"),
        "{text}"
    );
    assert_eq!(framework["cuda"].as_str(), Some("13"));
    assert_eq!(
        framework["from"].as_str(),
        Some("nvidia-cuda-runtime~=13.0")
    );
}
