#!/usr/bin/env python3
"""Seed corpora for the fuzz targets (fuzz/corpus/TARGET/), from the test fixtures, from
this machine's own files of the kinds images hold (a Python's dist-info, dpkg's status,
os-release, an ELF library), and from envlock's own outputs. Run by fuzz/run; idempotent."""
import io
import json
import os
import subprocess
import sys
import sysconfig
import tarfile
from pathlib import Path

FUZZ = Path(__file__).resolve().parent
ROOT = FUZZ.parent
CORPUS = FUZZ / "corpus"
FIXTURES = ROOT / "fixtures"


def elf_with_fatbin():
    """A 64-bit ELF whose `.nv_fatbin` holds one fatbin (SASS sm_80 and sm_90, PTX
    compute_90), laid out as NVIDIA's tools lay it out, so the fuzzer starts inside it."""
    import struct

    entries = b""
    for kind, arch in [(2, 80), (2, 90), (1, 90)]:
        header = bytearray(64)
        struct.pack_into("<HHIQ", header, 0, kind, 0x101, 64, 16)
        struct.pack_into("<I", header, 28, arch)
        entries += bytes(header) + b"\xab" * 16
    fatbin = struct.pack("<IHHQ", 0xBA55ED50, 1, 16, len(entries)) + entries
    names = b"\0.shstrtab\0.nv_fatbin\0"
    names_at, fatbin_at = 64, 64 + 40
    table_at = fatbin_at + len(fatbin)
    header = bytearray(64)
    header[:6] = b"\x7fELF\x02\x01"
    struct.pack_into("<Q", header, 0x28, table_at)
    struct.pack_into("<HHH", header, 0x3A, 64, 3, 1)
    rows = bytes(64)
    rows += struct.pack("<IIQQQQIIQQ", 1, 3, 0, 0, names_at, len(names), 0, 0, 1, 0)
    rows += struct.pack("<IIQQQQIIQQ", 11, 1, 0, 0, fatbin_at, len(fatbin), 0, 0, 8, 0)
    return bytes(header) + names.ljust(40, b"\0") + fatbin + rows


def seed(target, name, data):
    folder = CORPUS / target
    folder.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    (folder / name).write_bytes(data[: 1 << 20])


def files(folder, pattern):
    return sorted(p for p in Path(folder).rglob(pattern) if p.is_file())


def tar_of(folder, prefix=""):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path in sorted(Path(folder).rglob("*")):
            if path.stat().st_size < 256 << 10 or path.is_dir():
                tar.add(path, arcname=prefix + str(path.relative_to(folder)), recursive=False)
    return buffer.getvalue()


def main():
    site = Path(sysconfig.get_paths()["purelib"])
    for dist in sorted(site.glob("*.dist-info"))[:8]:
        for kind, target in [("METADATA", "metadata"), ("WHEEL", "metadata"),
                             ("RECORD", "record"), ("direct_url.json", "direct-url")]:
            if (dist / kind).is_file():
                seed(target, f"{dist.name}-{kind}", (dist / kind).read_bytes())
    seed("direct-url", "vcs.json", json.dumps({"url": "https://u:p@example.com/r.git",
                                               "vcs_info": {"vcs": "git", "commit_id": "abc"}}))
    seed("direct-url", "archive.json", json.dumps({"url": "file:///w.whl", "archive_info":
                                                   {"hashes": {"sha256": "ab" * 32}}}))
    for path, target in [("/var/lib/dpkg/status", "dpkg-status"), ("/etc/os-release", "os-release"),
                         ("/etc/passwd", "passwd")]:
        if Path(path).is_file():
            seed(target, Path(path).name, Path(path).read_bytes()[: 64 << 10])
    seed("apk-installed", "installed", "C:Q1abc=\nP:musl\nV:1.2.4-r2\nA:x86_64\n\nP:python3\nV:3.11.6-r0\n\n")
    seed("conda-record", "mkl.json", json.dumps({"name": "mkl", "version": "2024.0.0",
                                                  "build": "ha957f24_49657", "channel":
                                                  "https://conda.anaconda.org/conda-forge/linux-64"}))
    seed("pyvenv", "pyvenv.cfg", "home = /usr/bin\ninclude-system-site-packages = false\nversion = 3.11.2\n")
    seed("pyvenv", "patchlevel.h", '#define PY_VERSION "3.11.7"\n')
    seed("command-line", "sh", "cd /app && exec gunicorn -w 2 'app:create()' --bind 0.0.0.0:8000")
    seed("history-step", "run", "|2 HF_TOKEN=x MODE=prod /bin/sh -c pip install -r requirements.txt")
    seed("history-step", "env", "/bin/sh -c #(nop)  ENV API_TOKEN=secret PATH=/usr/bin")
    libraries = [p for p in Path("/usr/lib").rglob("libz.so*") if p.is_file()][:1]
    for library in libraries + [Path(sys.executable).resolve()]:
        seed("elf", library.name, library.read_bytes()[: 256 << 10])
    seed("elf", "fatbin.so", elf_with_fatbin())
    for folder in [FIXTURES / "models" / "salary", FIXTURES / "python" / "editable-pkg"]:
        data = tar_of(folder)
        for target, prefix in [("layer-tar", "app/model/"), ("folder-tar", ""), ("model-tar", "")]:
            seed(target, folder.name + ".tar", tar_of(folder, prefix) if prefix else data)
    digest = "sha256:" + "ab" * 32
    seed("oci-manifest", "manifest.json", json.dumps({"schemaVersion": 2, "config": {"digest": digest, "size": 1},
                                                       "layers": [{"digest": digest, "size": 2}]}))
    seed("oci-manifest", "index.json", json.dumps({"schemaVersion": 2, "manifests": [
        {"digest": digest, "size": 1, "platform": {"os": "linux", "architecture": "amd64"}},
        {"digest": digest, "size": 1, "platform": {"os": "unknown", "architecture": "unknown"}}]}))
    seed("image-config", "config.json", json.dumps({
        "architecture": "amd64", "os": "linux", "config": {"Env": ["PATH=/usr/bin", "OMP_NUM_THREADS=2"],
        "Cmd": ["python3", "serve.py"], "WorkingDir": "/app", "User": "1000"},
        "rootfs": {"type": "layers", "diff_ids": [digest]},
        "history": [{"created_by": "/bin/sh -c pip install numpy"}]}))
    probe = subprocess.run([sys.executable, "-c", (ROOT / "crates/envlock/src/capture/python/probe.py").read_text()],
                           capture_output=True)
    if probe.returncode == 0:
        seed("probe-answer", "answer.json", probe.stdout)
    seed("job-results", "framed", b"0.out 3\nok\n0.err 0\n\n0.status 15\n{\"exit\": 0}  \n.whole 0\n")
    seed("trace", "trace", "p 12\nm numpy\nm numpy.linalg\nl /usr/lib/libopenblas.so.0\n")
    for lock in files(FIXTURES, "*.lock"):
        seed("lock", f"{lock.parent.name}-{lock.name}", lock.read_bytes())
    seed("golden-output", "json", '{"salary": [41000.5, 52000.25]}\0{"salary": [41000.5, 52000.26]}')
    seed("golden-output", "numbers", "1.0 2.5 nan inf\0" + "1.0 2.5000001 nan inf")
    seed("http-response", "length", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n[1.5]")
    seed("http-response", "chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\n[1]\r\n0\r\n\r\n")
    names = ["model.pkl", "model.joblib", "model.pt", "model.keras", "model.onnx", "model.safetensors",
             "model.json", "model.ubj", "model.txt", "config.json", "model.bin"]
    extensions = {".pkl": 0, ".pickle": 0, ".joblib": 1, ".pt": 2, ".pth": 2, ".keras": 3, ".onnx": 4,
                  ".safetensors": 5, ".json": 6, ".ubj": 7, ".txt": 8, ".npy": 10, ".npz": 10,
                  ".zip": 10, ".bin": 10, ".ckpt": 10}
    for model in files(FIXTURES / "models", "*"):
        if model.suffix in extensions and model.stat().st_size < 1 << 20:
            index = 9 if model.name == "config.json" else extensions[model.suffix]
            seed("model", model.name, bytes([index]) + model.read_bytes())
    assert len(names) == 11
    model_reader_seeds()
    declared = FIXTURES / "declared"
    seed("uv-lock", "uv.lock", (declared / "uv.lock").read_bytes())
    seed("requirements", "requirements.txt", (declared / "requirements.txt").read_bytes())
    for requirements in files(FIXTURES / "models", "requirements.txt"):
        seed("requirements", requirements.parent.name + ".txt", requirements.read_bytes())
    seed("pylock", "pylock.toml", 'lock-version = "1.0"\ncreated-by = "uv"\nrequires-python = ">=3.11"\n'
         '[[packages]]\nname = "numpy"\nversion = "1.26.4"\nmarker = "python_version >= \'3.9\'"\n'
         '[[packages.wheels]]\nname = "numpy-1.26.4-cp311-cp311-manylinux_2_17_x86_64.whl"\n'
         'url = "https://files/numpy.whl"\nhashes = { sha256 = "' + "ab" * 32 + '" }\n')
    seed("poetry-lock", "poetry.lock", '[[package]]\nname = "numpy"\nversion = "1.26.4"\noptional = false\n'
         'python-versions = ">=3.9"\nfiles = [{file = "numpy-1.26.4-cp311-cp311-manylinux_2_17_x86_64.whl", '
         'hash = "sha256:' + "ab" * 32 + '"}]\n[metadata]\nlock-version = "2.0"\npython-versions = "^3.11"\n'
         '[tool.poetry.dependencies]\npython = "^3.11"\nnumpy = "^1.26"\n')
    seed("marker", "marker", "python_version >= '3.9' and (sys_platform == 'linux' or extra == 'gpu')")
    envlock = ROOT / "target" / "debug" / "envlock"
    if envlock.exists():
        locks = FIXTURES / "locks"
        for lock in ["baseline.lock", "models.lock"]:
            sbom = subprocess.run([envlock, "export", "--format", "cyclonedx", locks / lock],
                                  capture_output=True)
            if sbom.returncode == 0:
                seed("sbom", lock + ".cdx.json", sbom.stdout)
        shard = subprocess.run([envlock, "audit", locks / "baseline.lock", locks / "target.lock",
                                "--shard", "1/2", "--format", "json"], capture_output=True)
        if shard.returncode == 0:
            seed("audit-shard", "shard-1.json", shard.stdout)
    seed("sbom", "legacy.cdx.json", json.dumps({"bomFormat": "CycloneDX", "specVersion": "1.4",
        "metadata": {"tools": [{"name": "syft", "version": "0.80.0"}]}, "components": [
            {"type": "library", "name": "numpy", "purl": "pkg:pypi/numpy@1.26.4"},
            {"type": "library", "name": "bash", "purl": "pkg:rpm/fedora/bash@5.2.15-5.fc38?epoch=1"}]}))
    print(f"seeds: {sum(1 for _ in CORPUS.rglob('*') if _.is_file())} files in {CORPUS}")


def model_reader_seeds():
    """The model reader's own targets (crates/envlock-model/fuzz/, `envlock_model::fuzzing`),
    from the model fixtures by their first bytes. A first byte picks the variant where a target
    has several, in the order of that module's lists."""
    compressors = [(b"\x78", 0), (b"\x1f\x8b", 1), (b"BZh", 2), (b"\xfd7zXZ\x00", 3), (b"\x5d\x00\x00", 4),
                   (b"\x04\x22\x4d\x18", 5)]
    formats = {".onnx": 0, ".json": 1, ".ubj": 1, ".safetensors": 2, ".txt": 4}
    legacy_torch = b"\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19"
    for model in files(FIXTURES / "models", "*"):
        if model.stat().st_size >= 1 << 20 or model.suffix in (".py", ".md", ".toml", ""):
            continue
        data = model.read_bytes()
        name = f"{model.parent.name}-{model.name}"
        if data.startswith(b"PK\x03\x04"):
            seed("zip", name, data)
        elif data.startswith(b"\x93NUMPY"):
            seed("npy", name, data)
        elif data.startswith(legacy_torch):
            seed("pickle", name, bytes([2]) + data)
        elif model.suffix in (".pkl", ".pickle", ".joblib", ".pt", ".pth", ".bin", ".ckpt"):
            compressor = next((index for magic, index in compressors if data.startswith(magic)), None)
            if compressor is None:
                seed("pickle", name, bytes([0]) + data)
            else:
                seed("compressed", name, bytes([compressor]) + data)
        if model.name == "config.json":
            seed("formats", name, bytes([3]) + data)
        elif model.suffix in formats:
            seed("formats", name, bytes([formats[model.suffix]]) + data)
    # torch before 0.4: a tar of pickles (`sys_info`, `pickle`, `storages`, `tensors`).
    pickle = (FIXTURES / "models" / "pickles" / "values-p2.pkl").read_bytes()
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for member in ["sys_info", "pickle"]:
            info = tarfile.TarInfo(member)
            info.size = len(pickle)
            tar.addfile(info, io.BytesIO(pickle))
    seed("torch-tar", "legacy.tar", buffer.getvalue())


if __name__ == "__main__":
    os.chdir(ROOT)
    main()
