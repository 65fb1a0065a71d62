//! Model hashing through the CLI, checked against hashes computed independently by Python.

use std::process::Command;

use crate::support::*;

fn python_sha256(path: &std::path::Path) -> String {
    let output = Command::new(system_python())
        .args([
            "-c",
            "import hashlib,sys; print(hashlib.sha256(open(sys.argv[1],'rb').read()).hexdigest())",
        ])
        .arg(path)
        .output()
        .unwrap();
    format!(
        "sha256:{}",
        String::from_utf8(output.stdout).unwrap().trim()
    )
}

#[test]
fn file_and_folder_models_with_independent_hashes() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("model");
    std::fs::create_dir_all(model.join("tokenizer")).unwrap();
    std::fs::write(
        model.join("weights.bin"),
        (0..5_000_000u32)
            .map(|i| (i % 251) as u8)
            .collect::<Vec<_>>(),
    )
    .unwrap();
    std::fs::write(model.join("tokenizer/vocab.txt"), "a\nb\n").unwrap();
    std::fs::write(model.join("config.json"), "{}").unwrap();
    std::fs::write(dir.path().join("scaler.pkl"), b"pickle").unwrap();

    let lock = snapshot(
        envlock()
            .args([
                "snapshot",
                "--model",
                "model/",
                "--model",
                "scaler.pkl",
                "--python",
            ])
            .arg(system_python())
            .current_dir(dir.path()),
    );
    let models = lock["models"].as_array().unwrap();
    assert_eq!(models.len(), 2);
    let folder = models[0].as_table().unwrap();
    assert_eq!(
        folder["path"].as_str(),
        Some("model/"),
        "paths are kept as given"
    );
    assert_eq!(folder["kind"].as_str(), Some("directory"));
    let files = folder["files"].as_array().unwrap();
    let mut manifest = String::new();
    for (file, expected) in files
        .iter()
        .zip(["config.json", "tokenizer/vocab.txt", "weights.bin"])
    {
        assert_eq!(file["path"].as_str(), Some(expected));
        let hash = python_sha256(&model.join(expected));
        assert_eq!(file["sha256"].as_str(), Some(hash.as_str()));
        manifest.push_str(&format!("{}  {expected}\n", &hash[7..]));
    }
    // The folder digest is sha256 over `sha256sum`-style lines, reproducible by hand.
    std::fs::write(dir.path().join("manifest"), &manifest).unwrap();
    assert_eq!(
        folder["sha256"].as_str(),
        Some(python_sha256(&dir.path().join("manifest")).as_str())
    );
    assert_eq!(folder["size"].as_integer(), Some(5_000_000 + 4 + 2));

    let file = models[1].as_table().unwrap();
    assert_eq!(file["kind"].as_str(), Some("file"));
    assert_eq!(
        file["sha256"].as_str(),
        Some(python_sha256(&dir.path().join("scaler.pkl")).as_str())
    );
}

#[test]
fn config_supplies_python_and_models_and_flags_override() {
    let dir = tempfile::tempdir().unwrap();
    let project = dir.path().join("project");
    std::fs::create_dir_all(project.join("model")).unwrap();
    std::fs::write(project.join("model/a.bin"), b"a").unwrap();
    std::fs::write(project.join("other.bin"), b"o").unwrap();
    std::fs::write(
        project.join("envlock.toml"),
        format!(
            "python = \"{}\"\nmodels = [\"model\"]\n",
            system_python().display()
        ),
    )
    .unwrap();

    // Found in the current folder; model paths relative to it.
    let lock = snapshot(envlock().arg("snapshot").current_dir(&project));
    assert_eq!(
        lock["source"]["interpreter"].as_str(),
        system_python().to_str()
    );
    assert_eq!(lock["models"][0]["path"].as_str(), Some("model"));

    // Named with --config from elsewhere: its relative paths start at its own folder.
    let lock = snapshot(
        envlock()
            .args(["snapshot", "--config", "project/envlock.toml"])
            .current_dir(dir.path()),
    );
    assert_eq!(
        lock["models"][0]["files"][0]["path"].as_str(),
        Some("a.bin")
    );

    // --model replaces the configured models.
    let lock = snapshot(
        envlock()
            .args(["snapshot", "--model", "other.bin"])
            .current_dir(&project),
    );
    let models = lock["models"].as_array().unwrap();
    assert_eq!(models.len(), 1);
    assert_eq!(models[0]["path"].as_str(), Some("other.bin"));
}
