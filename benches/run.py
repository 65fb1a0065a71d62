#!/usr/bin/env python3
"""envlock's benchmarks: wall-time ratios against peers measured in the same run.

    python3 benches/run.py            # all
    python3 benches/run.py snapshot   # snapshot of a ~50-package venv vs `uv pip freeze`, `pip freeze`
    python3 benches/run.py hash       # hashing a 1 GiB model vs `openssl dgst -sha256`

Fixtures (a venv, a 1 GiB file, uv) are built once under benches/.work and reused.
A benchmark is not a test: it prints figures and never fails on them.
"""
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "benches" / ".work"
ENVLOCK = ROOT / "target" / "release" / "envlock"
# About fifty distributions once dependencies are resolved.
REQUIREMENTS = [
    "pandas==2.2.3", "scikit-learn==1.5.2", "matplotlib==3.9.2", "requests==2.32.3",
    "flask==3.0.3", "pyyaml==6.0.2", "sqlalchemy==2.0.36", "rich==13.9.4", "pytest==8.3.3",
    "jsonschema==4.23.0", "httpx==0.27.2",
]


def sh(*args, **kwargs):
    return subprocess.run(args, check=True, **kwargs)


def timed(args, runs, env=None):
    """Median wall time of `runs` runs, after one warm-up run."""
    subprocess.run(args, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(args, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def tools_venv():
    tools = WORK / "tools"
    if not (tools / "bin" / "uv").exists():
        sh(sys.executable, "-m", "venv", str(tools))
        sh(str(tools / "bin" / "pip"), "install", "-q", "--disable-pip-version-check", "uv")
    return tools / "bin" / "uv"


def bench_venv():
    venv = WORK / "venv50"
    if not (venv / ".ready").exists():
        sh(sys.executable, "-m", "venv", "--clear", str(venv))
        sh(str(venv / "bin" / "pip"), "install", "-q", "--disable-pip-version-check", *REQUIREMENTS)
        (venv / ".ready").write_text("\n".join(REQUIREMENTS))
    return venv / "bin" / "python"


def build():
    sh("cargo", "build", "--release", "--quiet", cwd=ROOT)


def bench_snapshot():
    uv = tools_venv()
    python = bench_venv()
    count = len(subprocess.run([str(uv), "pip", "freeze", "--python", str(python)],
                               check=True, capture_output=True, text=True).stdout.splitlines())
    cache = WORK / "cache"
    env = dict(os.environ, ENVLOCK_CACHE_DIR=str(cache))
    cold_env = dict(env, ENVLOCK_NO_CACHE="1")
    envlock = timed([str(ENVLOCK), "snapshot", "--python", str(python)], 30, env)
    envlock_cold = timed([str(ENVLOCK), "snapshot", "--python", str(python)], 10, cold_env)
    uv_freeze = timed([str(uv), "pip", "freeze", "--python", str(python)], 30)
    pip_freeze = timed([str(python), "-m", "pip", "freeze"], 5)
    print(f"snapshot of a {count}-package venv (median wall time)")
    print(f"  envlock snapshot           {envlock * 1000:8.1f} ms")
    print(f"  envlock snapshot, no cache {envlock_cold * 1000:8.1f} ms")
    print(f"  uv pip freeze              {uv_freeze * 1000:8.1f} ms")
    print(f"  pip freeze                 {pip_freeze * 1000:8.1f} ms")
    print(f"  ratio envlock / uv pip freeze:           {envlock / uv_freeze:5.2f}x  (target <= 1.0x)")
    print(f"  ratio envlock, no cache / uv pip freeze: {envlock_cold / uv_freeze:5.2f}x")
    print(f"  ratio envlock / pip freeze:              {envlock / pip_freeze:5.2f}x")


def bench_hash():
    model = WORK / "model-1g.bin"
    if not model.exists() or model.stat().st_size != 1 << 30:
        with open(model, "wb") as handle:
            for _ in range(1024):
                handle.write(os.urandom(1 << 20))
    python = subprocess.run(["python3", "-c", "import sys; print(sys.executable)"],
                            check=True, capture_output=True, text=True).stdout.strip()
    env = dict(os.environ, ENVLOCK_CACHE_DIR=str(WORK / "cache"))
    envlock = timed([str(ENVLOCK), "snapshot", "--python", python, "--model", str(model)], 5, env)
    openssl = timed(["openssl", "dgst", "-sha256", str(model)], 5)
    gib = 1.0
    print("hashing a 1 GiB model file (median wall time, page cache warm)")
    print(f"  envlock snapshot --model   {envlock:6.3f} s  {gib / envlock:5.2f} GiB/s")
    print(f"  openssl dgst -sha256       {openssl:6.3f} s  {gib / openssl:5.2f} GiB/s")
    print(f"  throughput ratio envlock / openssl: {openssl / envlock:5.2f}x  (target >= 0.9x)")


def main():
    WORK.mkdir(parents=True, exist_ok=True)
    which = sys.argv[1:] or ["snapshot", "hash"]
    build()
    for name in which:
        {"snapshot": bench_snapshot, "hash": bench_hash}[name]()


if __name__ == "__main__":
    main()
