//! `cuda-driver`: a real CUDA runtime wheel from PyPI (NVIDIA's `nvidia-cuda-runtime-cu12`,
//! `libcudart.so.12`) against deploy nodes' drivers, from a flag and from `envlock.toml`.

use crate::support::*;

/// The venv with NVIDIA's CUDA 12 runtime wheel (about 3 MB).
fn cuda12_venv() -> std::path::PathBuf {
    const PIN: &str = "nvidia-cuda-runtime-cu12==12.9.79";
    venv("cuda12", PIN, &[], |folder| pip_install(folder, &[PIN]))
}

/// `envlock diff LOCK python:PYTHON ARGS…` in `dir`: exit code, the `cuda-driver`
/// findings (subject, severity, message) and stderr.
fn cuda_findings(
    dir: &std::path::Path,
    python: &std::path::Path,
    args: &[&str],
) -> (i32, Vec<(String, String, String)>, String) {
    let run = run(envlock()
        .args(["diff", "--format", "json", "dev.lock"])
        .arg(format!("python:{}", python.display()))
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
        .filter(|finding| finding["code"] == "cuda-driver")
        .map(|finding| {
            let text = |key: &str| finding[key].as_str().unwrap().to_string();
            (text("subject"), text("severity"), text("message"))
        })
        .collect();
    (run.code, findings, run.stderr)
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
