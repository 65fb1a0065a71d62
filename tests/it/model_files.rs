//! What model files say, read by envlock from files the real libraries wrote: scikit-learn
//! estimators under two scikit-learn versions (pickle, joblib and each compressed joblib),
//! hostile pickles that would run a command, and the gate over them.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::*;

const OLD: &str = "scikit-learn==1.5.2";
const NEW: &str = "scikit-learn==1.6.1";

fn sklearn_venv(requirement: &'static str) -> PathBuf {
    let name = if requirement == OLD {
        "sklearn-old"
    } else {
        "sklearn-new"
    };
    venv(
        name,
        &format!("{requirement} numpy==1.26.4 lz4 v1"),
        &[],
        |folder| {
            pip_install(
                folder,
                &[requirement, "numpy==1.26.4", "joblib==1.4.2", "lz4==4.3.3"],
            );
        },
    )
}

/// The models of `fixtures/models/write_sklearn.py`, written by `python` into a new folder.
fn written_models(python: &Path, marker: &Path) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    must(
        Command::new(python)
            .arg(root().join("fixtures/models/write_sklearn.py"))
            .arg(dir.path())
            .arg(marker),
    );
    dir
}

fn model<'a>(lock: &'a toml::Table, path: &str) -> &'a toml::Table {
    lock["models"]
        .as_array()
        .unwrap()
        .iter()
        .map(|model| model.as_table().unwrap())
        .find(|model| model["path"].as_str() == Some(path))
        .unwrap_or_else(|| panic!("no model {path} in {lock:#?}"))
}

fn strings(table: &toml::Table, key: &str) -> Vec<String> {
    table
        .get(key)
        .and_then(|value| value.as_array())
        .map(|items| {
            items
                .iter()
                .map(|item| item.as_str().unwrap().to_string())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn scikit_learn_models_say_who_wrote_them_and_unsafe_pickles_are_stopped() {
    let old = sklearn_venv(OLD);
    let new = sklearn_venv(NEW);
    let marker_dir = tempfile::tempdir().unwrap();
    let marker = marker_dir.path().join("pwned");
    let models = written_models(&old, &marker);
    assert!(!marker.exists(), "writing the hostile pickles ran them");
    let names = [
        "pipeline.pkl",
        "forest-p5.pkl",
        "forest.joblib",
        "forest.joblib.zlib",
        "forest.joblib.gzip",
        "forest.joblib.bz2",
        "forest.joblib.xz",
        "forest.joblib.lzma",
        "forest.joblib.lz4",
        "evil.pkl",
        "evil.joblib",
    ];
    let mut command = envlock();
    command.args(["snapshot", "--python"]).arg(&old);
    for name in names {
        command.args(["--model", name]);
    }
    let lock = snapshot(command.current_dir(models.path()));
    assert!(!marker.exists(), "envlock ran a pickle");

    for name in &names[..9] {
        let entry = model(&lock, name);
        let expected = if name.contains("joblib") {
            "joblib"
        } else {
            "pickle"
        };
        assert_eq!(
            entry["format"].as_str(),
            Some(expected),
            "{name}: {entry:#?}"
        );
        let written = entry["written-by"].as_array().unwrap();
        assert_eq!(written.len(), 1, "{name}: {entry:#?}");
        assert_eq!(written[0]["name"].as_str(), Some("scikit-learn"));
        assert_eq!(written[0]["version"].as_str(), Some("1.5.2"));
        assert!(strings(entry, "unsafe").is_empty(), "{name}: {entry:#?}");
        assert!(
            strings(entry, "not-importable").is_empty(),
            "{name}: {entry:#?}"
        );
        let imports = strings(entry, "imports");
        assert!(
            imports.iter().any(|module| module.starts_with("sklearn.")),
            "{name}: {imports:?}"
        );
    }
    assert!(strings(model(&lock, "pipeline.pkl"), "imports")
        .contains(&"sklearn.linear_model._logistic".to_string()));
    assert!(strings(model(&lock, "forest.joblib"), "imports")
        .contains(&"joblib.numpy_pickle".to_string()));
    for name in ["evil.pkl", "evil.joblib"] {
        let entry = model(&lock, name);
        assert_eq!(
            strings(entry, "unsafe"),
            ["posix.system"],
            "{name}: {entry:#?}"
        );
        assert!(
            !strings(entry, "unsafe-where").is_empty(),
            "{name}: {entry:#?}"
        );
    }

    // The gate, in the runtime of the other scikit-learn: the version the files record
    // differs (a warning), and the hostile files are errors.
    let dev = models.path().join("dev.lock");
    std::fs::write(&dev, toml::to_string(&lock).unwrap()).unwrap();
    let target = format!("python:{}", new.display());
    let run = run(envlock()
        .args([
            "diff",
            "--format",
            "json",
            "--no-golden",
            "dev.lock",
            &target,
        ])
        .current_dir(models.path()));
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(!marker.exists(), "envlock ran a pickle");
    let report: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let findings = report["findings"].as_array().unwrap();
    let of = |code: &str, subject: &str| {
        findings
            .iter()
            .find(|f| f["code"] == code && f["subject"] == subject)
            .unwrap_or_else(|| panic!("no {code} for {subject}: {report:#}"))
    };
    let framework = of("model-framework", "forest.joblib.xz");
    assert_eq!(framework["severity"], "warning");
    assert_eq!(framework["baseline"], "1.5.2");
    assert_eq!(framework["target"], "1.6.1");
    let unsafe_model = of("model-unsafe", "evil.joblib");
    assert_eq!(unsafe_model["severity"], "error");
    assert!(
        unsafe_model["message"]
            .as_str()
            .unwrap()
            .contains("posix.system"),
        "{unsafe_model:#}"
    );

    // A model the team trusts: its finding is information, the rest still gate.
    std::fs::write(
        models.path().join("envlock.toml"),
        "[models]\ntrust = [\"evil.pkl\", \"evil.joblib\"]\n",
    )
    .unwrap();
    let trusted = run_json(models.path(), &target);
    let unsafe_model = trusted["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["code"] == "model-unsafe" && f["subject"] == "evil.pkl")
        .unwrap()
        .clone();
    assert_eq!(unsafe_model["severity"], "info", "{unsafe_model:#}");

    // A typo in `[models]` is a usage error naming the key.
    std::fs::write(
        models.path().join("envlock.toml"),
        "[models]\ntrusted = []\n",
    )
    .unwrap();
    let typo = crate::support::run(
        envlock()
            .args(["diff", "dev.lock", &target])
            .current_dir(models.path()),
    );
    assert_eq!(typo.code, 2, "{}", typo.stderr);
    assert!(typo.stderr.contains("`trusted`"), "{}", typo.stderr);
}

fn run_json(folder: &Path, target: &str) -> serde_json::Value {
    let run = run(envlock()
        .args([
            "diff",
            "--format",
            "json",
            "--no-golden",
            "dev.lock",
            target,
        ])
        .current_dir(folder));
    assert!(run.code <= 1, "{}", run.stderr);
    serde_json::from_str(&run.stdout).unwrap()
}

/// A numpy 2 array pickle names `numpy._core.multiarray`: an image with numpy 1.24 cannot
/// import it (a `model-import` error, in exec, static and layer captures alike), one with
/// 1.26 can (it ships a `numpy._core` shim), found from the image's files.
#[cfg_attr(not(envlock_docker), ignore = "needs a Docker engine")]
#[test]
fn a_numpy_2_pickle_needs_numpy_core_which_numpy_1_24_lacks() {
    crate::docker::need_engine();
    let dev = venv("numpy2", "numpy==2.1.3 v1", &[], |folder| {
        pip_install(folder, &["numpy==2.1.3"]);
    });
    let work = tempfile::tempdir().unwrap();
    let pickle = work.path().join("array.pkl");
    must(
        Command::new(&dev)
            .args(["-c", "import pickle, sys, numpy; pickle.dump(numpy.arange(5.0), open(sys.argv[1], 'wb'))"])
            .arg(&pickle),
    );
    std::fs::create_dir(work.path().join("model")).unwrap();
    std::fs::rename(&pickle, work.path().join("model/array.pkl")).unwrap();
    let dev_lock = work.path().join("dev.lock");
    must(
        envlock()
            .args(["snapshot", "--python"])
            .arg(&dev)
            .args(["--model", "model/array.pkl", "-o"])
            .arg(&dev_lock)
            .current_dir(work.path()),
    );
    let dev_text = std::fs::read_to_string(&dev_lock).unwrap();
    assert!(
        dev_text.contains("\"numpy._core.multiarray\""),
        "{dev_text}"
    );
    assert!(!dev_text.contains("not-importable"), "{dev_text}");

    for (numpy, importable) in [("numpy==1.24.4", false), ("numpy==1.26.4", true)] {
        let wheel = crate::docker::wheel_for_image(numpy);
        let name = wheel.file_name().unwrap().to_str().unwrap().to_string();
        let dockerfile = format!(
            "FROM {{base}}\nCOPY {name} /tmp/\nRUN python3 -m pip install -q --no-index \
             --break-system-packages /tmp/{name} && rm /tmp/{name}\nWORKDIR /app\n\
             COPY array.pkl /app/model/array.pkl\nCMD [\"python3\"]\n"
        );
        let model = work.path().join("model/array.pkl");
        let image = crate::docker::built(
            "numpy-model",
            &dockerfile,
            &[
                (name.as_str(), wheel.as_path()),
                ("array.pkl", model.as_path()),
            ],
        );
        let archive_dir = tempfile::tempdir().unwrap();
        let archive = crate::docker::saved(&image, archive_dir.path());
        let sources = [
            vec!["--image".to_string(), image.clone()],
            vec![
                "--no-exec".to_string(),
                "--image".to_string(),
                image.clone(),
            ],
            vec![
                "--image".to_string(),
                format!("docker-archive:{}", archive.display()),
            ],
        ];
        for source in &sources {
            let lock = snapshot(
                envlock()
                    .arg("snapshot")
                    .args(source)
                    .args(["--model", "model/array.pkl"]),
            );
            let entry = model_entry(&lock, "model/array.pkl");
            assert_eq!(entry["format"].as_str(), Some("pickle"), "{source:?}");
            let missing = strings(entry, "not-importable");
            if importable {
                assert!(missing.is_empty(), "{numpy} {source:?}: {entry:#?}");
            } else {
                assert_eq!(missing, ["numpy._core.multiarray"], "{numpy} {source:?}");
            }
        }
        // The gate says so, naming the module and the numpy that is there.
        let run = run(envlock()
            .args(["diff", "--format", "json", "dev.lock", &image])
            .current_dir(work.path()));
        assert_eq!(run.code, 1, "{}", run.stderr);
        let report: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
        let import = report["findings"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["code"] == "model-import")
            .cloned();
        if importable {
            assert!(import.is_none(), "{report:#}");
        } else {
            let import = import.expect("a model-import finding");
            assert_eq!(import["severity"], "error");
            assert_eq!(import["subject"], "model/array.pkl");
            let message = import["message"].as_str().unwrap();
            assert!(message.contains("numpy._core.multiarray"), "{message}");
            assert!(message.contains("numpy 1.24.4 is installed"), "{message}");
            // The layer capture of the same image gates the same way.
            let archive_target = format!("docker-archive:{}", archive.display());
            let run = crate::support::run(
                envlock()
                    .args(["diff", "--format", "json", "dev.lock", &archive_target])
                    .current_dir(work.path()),
            );
            let report: serde_json::Value =
                serde_json::from_str(&run.stdout).unwrap_or_else(|_| panic!("{}", run.stderr));
            assert!(
                report["findings"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|f| f["code"] == "model-import" && f["subject"] == "model/array.pkl"),
                "{report:#}"
            );
        }
        assert!(
            crate::docker::containers_of(&image).is_empty(),
            "containers left behind"
        );
    }
}

fn model_entry<'a>(lock: &'a toml::Table, path: &str) -> &'a toml::Table {
    model(lock, path)
}

/// The walk-through's scikit-learn model (`fixtures/models/churn`, docs/walkthrough.md):
/// trained and snapshotted in a venv, gated in an image built from the same pins (no model
/// finding) and in one where scikit-learn resolved to the next minor (`model-framework`).
#[cfg_attr(not(envlock_docker), ignore = "needs a Docker engine")]
#[test]
fn the_walkthrough_gates_a_scikit_learn_model_in_an_image() {
    crate::docker::need_engine();
    let fixture = root().join("fixtures/models/churn");
    let requirements = std::fs::read_to_string(fixture.join("requirements.txt")).unwrap();
    let dev = venv("churn", &requirements, &[], |folder| {
        let list = fixture.join("requirements.txt");
        pip_install(folder, &["-r", list.to_str().unwrap()]);
    });
    let work = tempfile::tempdir().unwrap();
    let project = work.path().join("churn");
    must(Command::new("cp").arg("-a").arg(&fixture).arg(&project));
    must(
        envlock()
            .args(["snapshot", "--python"])
            .arg(&dev)
            .args(["-o", "dev.lock"])
            .current_dir(&project),
    );
    let newer = requirements.replace("scikit-learn==1.5.2", "scikit-learn==1.6.1");
    let image = |variant: &str, pins: &str| {
        let wheels: Vec<PathBuf> = pins
            .lines()
            .filter(|line| !line.trim().is_empty())
            .map(crate::docker::wheel_for_image)
            .collect();
        let pins = pins.to_string();
        crate::docker::model_image("churn", variant, move |context| {
            for wheel in &wheels {
                std::fs::copy(
                    wheel,
                    context.join("wheels").join(wheel.file_name().unwrap()),
                )
                .unwrap();
            }
            std::fs::write(context.join("requirements.txt"), pins).unwrap();
        })
    };
    let pinned = image("pinned", &requirements);
    let drifted = image("sklearn-1.6.1", &newer);
    let gate = |target: &str| {
        let run = run(envlock()
            .args(["diff", "--format", "json", "dev.lock", target])
            .current_dir(&project));
        let report: serde_json::Value =
            serde_json::from_str(&run.stdout).unwrap_or_else(|_| panic!("{}", run.stderr));
        (run.code, report)
    };
    let (code, report) = gate(&pinned);
    assert_eq!(code, 0, "{report:#}");
    let findings = report["findings"].as_array().unwrap();
    assert!(
        !findings
            .iter()
            .any(|f| f["code"].as_str().unwrap().starts_with("model-")),
        "{report:#}"
    );
    assert_eq!(report["golden"][0]["status"], "pass", "{report:#}");
    // `scope = "loaded"` in its envlock.toml: the installer tooling nothing imports is
    // information; what the predictor loaded is traced.
    let pip = findings
        .iter()
        .find(|f| f["subject"] == "pip")
        .unwrap_or_else(|| panic!("{report:#}"));
    assert_eq!(
        (&pip["severity"], &pip["loaded"]),
        (&"info".into(), &false.into())
    );
    let loaded = report["golden"][0]["loaded"]["distributions"]
        .as_array()
        .unwrap();
    assert!(loaded.contains(&"scikit-learn".into()), "{report:#}");

    let (code, report) = gate(&drifted);
    assert_eq!(code, 1, "{report:#}");
    let findings = report["findings"].as_array().unwrap();
    let framework = findings
        .iter()
        .find(|f| f["code"] == "model-framework")
        .unwrap_or_else(|| panic!("{report:#}"));
    assert_eq!(framework["subject"], "model/model.joblib");
    assert_eq!(framework["severity"], "warning");
    assert_eq!(framework["baseline"], "1.5.2");
    assert_eq!(framework["target"], "1.6.1");
    assert!(findings
        .iter()
        .any(|f| f["code"] == "package-version" && f["subject"] == "scikit-learn"));
    for image in [&pinned, &drifted] {
        assert!(
            crate::docker::containers_of(image).is_empty(),
            "containers left behind"
        );
    }
}

/// Boosters, an ONNX graph and a safetensors file written by the real libraries, read for
/// their format and the version they record; a runtime without XGBoost is told so.
#[test]
fn boosters_onnx_and_safetensors_say_what_they_are() {
    let python = venv(
        "model-formats",
        "xgboost-cpu==2.1.3 lightgbm==4.5.0 onnx==1.17.0 safetensors==0.4.5 numpy==1.26.4 v1",
        &[],
        |folder| {
            pip_install(
                folder,
                &[
                    "xgboost-cpu==2.1.3",
                    "lightgbm==4.5.0",
                    "onnx==1.17.0",
                    "safetensors==0.4.5",
                    "numpy==1.26.4",
                ],
            );
        },
    );
    let dir = tempfile::tempdir().unwrap();
    let script = r#"
import numpy as np, xgboost, lightgbm, onnx
from onnx import helper, TensorProto
from safetensors.numpy import save_file
rng = np.random.default_rng(0)
x = rng.normal(size=(200, 3)); y = (x[:, 0] > 0).astype(int)
booster = xgboost.train({"objective": "binary:logistic"}, xgboost.DMatrix(x, label=y), 3)
booster.save_model("booster.json"); booster.save_model("booster.ubj")
lightgbm.train({"objective": "binary", "verbose": -1}, lightgbm.Dataset(x, y), 3).save_model("lgbm.txt")
graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g",
    [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
    [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])
onnx.save(helper.make_model(graph, producer_name="pytorch", producer_version="2.5.1"), "relu.onnx")
save_file({"w": rng.normal(size=(16, 16)).astype(np.float32)}, "weights.safetensors")
"#;
    must(
        Command::new(&python)
            .args(["-c", script])
            .current_dir(dir.path()),
    );
    let names = [
        "booster.json",
        "booster.ubj",
        "lgbm.txt",
        "relu.onnx",
        "weights.safetensors",
    ];
    let mut command = envlock();
    command.args(["snapshot", "--python"]).arg(&python);
    for name in names {
        command.args(["--model", name]);
    }
    let lock = snapshot(command.current_dir(dir.path()));
    let expected = [
        ("booster.json", "xgboost", Some(("xgboost", "2.1.3"))),
        ("booster.ubj", "xgboost", Some(("xgboost", "2.1.3"))),
        ("lgbm.txt", "lightgbm", None),
        ("relu.onnx", "onnx", Some(("torch", "2.5.1"))),
        ("weights.safetensors", "safetensors", None),
    ];
    for (name, format, written) in expected {
        let entry = model(&lock, name);
        assert_eq!(entry["format"].as_str(), Some(format), "{name}: {entry:#?}");
        let recorded: Vec<(String, String)> = entry
            .get("written-by")
            .and_then(|value| value.as_array())
            .map(|items| {
                items
                    .iter()
                    .map(|item| {
                        let field = |key: &str| item[key].as_str().unwrap().to_string();
                        (field("name"), field("version"))
                    })
                    .collect()
            })
            .unwrap_or_default();
        let wanted: Vec<(String, String)> = written
            .map(|(name, version)| vec![(name.to_string(), version.to_string())])
            .unwrap_or_default();
        assert_eq!(recorded, wanted, "{name}");
        assert!(entry.get("unsafe").is_none(), "{name}: {entry:#?}");
    }
    // A runtime without XGBoost: the booster's library is missing (an error).
    std::fs::write(dir.path().join("dev.lock"), toml::to_string(&lock).unwrap()).unwrap();
    let bare = venv("bare", "nothing installed v1", &[], |_| {});
    let target = format!("python:{}", bare.display());
    let report = run_json(dir.path(), &target);
    let framework = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["code"] == "model-framework" && f["subject"] == "booster.ubj")
        .cloned()
        .unwrap_or_else(|| panic!("{report:#}"));
    assert_eq!(framework["severity"], "error", "{framework:#}");
}

/// A folder keeps what each of its files says: which file was written by which
/// scikit-learn, which is unsafe; `model-framework` names the file to re-export, and the
/// CycloneDX export nests each file with its own SHA-256.
#[test]
fn a_model_folder_keeps_each_files_facts_and_its_findings_name_the_file() {
    let old = sklearn_venv(OLD);
    let new = sklearn_venv(NEW);
    let marker_dir = tempfile::tempdir().unwrap();
    let marker = marker_dir.path().join("pwned");
    let written_old = written_models(&old, &marker);
    let written_new = written_models(&new, &marker);
    let project = tempfile::tempdir().unwrap();
    let folder = project.path().join("model");
    std::fs::create_dir(&folder).unwrap();
    let copy = |from: &Path, to: &str| std::fs::copy(from, folder.join(to)).unwrap();
    copy(&written_old.path().join("forest.joblib"), "old.joblib");
    copy(&written_new.path().join("forest.joblib"), "new.joblib");
    copy(&written_old.path().join("evil.pkl"), "evil.pkl");
    copy(
        &root().join("fixtures/models/torch/state-dict.pt"),
        "weights.pt",
    );
    let lock = snapshot(
        envlock()
            .args(["snapshot", "--python"])
            .arg(&new)
            .args(["--model", "model"])
            .current_dir(project.path()),
    );
    assert!(!marker.exists(), "envlock ran a pickle");
    let entry = model(&lock, "model");
    assert_eq!(entry["format"].as_str(), Some("torch"), "{entry:#?}");
    let files: Vec<&toml::Table> = (entry["files"].as_array().unwrap().iter())
        .map(|file| file.as_table().unwrap())
        .collect();
    let file = |path: &str| {
        *files
            .iter()
            .find(|file| file["path"].as_str() == Some(path))
            .unwrap_or_else(|| panic!("no file {path}: {files:#?}"))
    };
    let version = |path: &str| {
        let written = file(path)["written-by"].as_array().unwrap();
        written[0]["version"].as_str().unwrap().to_string()
    };
    assert_eq!(version("old.joblib"), "1.5.2");
    assert_eq!(version("new.joblib"), "1.6.1");
    assert_eq!(file("old.joblib")["format"].as_str(), Some("joblib"));
    assert_eq!(file("weights.pt")["format"].as_str(), Some("torch"));
    assert!(strings(file("weights.pt"), "unsafe").is_empty());
    assert_eq!(strings(file("evil.pkl"), "unsafe"), ["posix.system"]);
    assert!(strings(file("new.joblib"), "unsafe").is_empty());

    std::fs::write(
        project.path().join("dev.lock"),
        toml::to_string(&lock).unwrap(),
    )
    .unwrap();
    let report = run_json(project.path(), &format!("python:{}", new.display()));
    let framework: Vec<&serde_json::Value> = (report["findings"].as_array().unwrap().iter())
        .filter(|finding| finding["code"] == "model-framework")
        .collect();
    assert_eq!(framework.len(), 1, "{report:#}");
    let message = framework[0]["message"].as_str().unwrap();
    // The hostile pickle was written by the old scikit-learn too.
    assert!(
        message.contains("was written by scikit-learn 1.5.2 (in `evil.pkl`, `old.joblib`)"),
        "{message}"
    );

    let export = run(envlock()
        .args(["export", "dev.lock", "--format", "cyclonedx"])
        .current_dir(project.path()));
    assert_eq!(export.code, 0, "{}", export.stderr);
    let bom: serde_json::Value = serde_json::from_str(&export.stdout).unwrap();
    let component = (bom["components"].as_array().unwrap().iter())
        .find(|component| component["type"] == "machine-learning-model")
        .unwrap();
    let nested = component["components"].as_array().unwrap();
    assert_eq!(nested.len(), 4, "{component:#}");
    let weights = std::fs::read(folder.join("weights.pt")).unwrap();
    let hex = sha256_of(&weights)
        .trim_start_matches("sha256:")
        .to_string();
    assert!(
        nested
            .iter()
            .any(|file| file["name"] == "weights.pt" && file["hashes"][0]["content"] == hex),
        "{component:#}"
    );
}

/// Files the real torch wrote (`fixtures/models/torch/make.py`, torch 2.15): a state dict,
/// a checkpoint, a whole module, a legacy file and TorchScript read clean; a payload in
/// the zip or in a legacy file is named.
#[test]
fn real_torch_files_read_clean_and_hostile_ones_are_named() {
    let folder = root().join("fixtures/models/torch");
    let expected = [
        ("state-dict.pt", "torch", &[][..]),
        ("checkpoint.pth", "torch", &[]),
        ("whole-module.pt", "torch", &[]),
        ("legacy.pt", "torch", &[]),
        ("torchscript.pt", "torchscript", &[]),
        ("hostile-zip.pt", "torch", &["posix.system"]),
        ("hostile-legacy.pt", "torch", &["posix.system"]),
    ];
    let mut command = envlock();
    command.args(["snapshot"]);
    for (name, _, _) in expected {
        command.args(["--model", name]);
    }
    let lock = snapshot(command.current_dir(&folder));
    for (name, format, calls) in expected {
        let entry = model(&lock, name);
        assert_eq!(entry["format"].as_str(), Some(format), "{name}: {entry:#?}");
        assert_eq!(strings(entry, "unsafe"), calls, "{name}: {entry:#?}");
        assert!(
            strings(entry, "imports")
                .iter()
                .all(|module| !module.starts_with("__torch__")),
            "{name}: {entry:#?}"
        );
    }
}
