#!/usr/bin/env python3
"""envlock and the peer model scanners on the same files: caught unsafe files, false positives on
safe ones, and errors, per scanner.

    python3 benches/scanners.py scan fixtures/models/attacks              # the rebuilt corpus
    python3 benches/scanners.py originals /tmp/peer-originals             # the peers' own samples,
    python3 benches/scanners.py scan /tmp/peer-originals --per-file       # from the fetched mirrors

`scan FOLDER...` reads each folder's `cases.toml` (`[[case]]` file, expect = "unsafe" | "safe" |
"data-only"; a folder without one is scanned and its verdicts printed, unscored), runs every
scanner on every file and prints a table; `--per-file` adds one line per file, `--json PATH`
writes all verdicts. `data-only` files (a peer labels them malicious, but they hold no global,
so loading them calls nothing) are reported apart, not scored.

Scanners:
- envlock: `envlock snapshot --python VENV/bin/python --model FILE -o OUT.lock` in a temporary
  folder, VENV an empty venv made here (`python3 -m venv --without-pip`); unsafe when the lock's
  `[[models]]` entry (or a `[[models.files]]` entry) has a non-empty `unsafe`; an error when no
  lock is written. The binary: `--envlock PATH` (default: target/release/envlock of this tree).
- picklescan (`picklescan -p FILE`): unsafe when its summary counts infected files or dangerous
  globals (also when it exits 2 after finding them), error on exit 2 otherwise.
- modelscan (`modelscan scan -p FILE -r json -o OUT`): unsafe when the report has issues; error
  when it has errors (exit 2, or exit 3 "nothing scanned" with errors); exit 3 with no error
  (no supported file) is `skip`.
- fickling (`fickling --check-safety FILE`): exit 1 unsafe, 2 error. Its CLI reads raw pickles
  only; `fickling-lib` is the same library driven as its `--huggingface` mode drives it for a
  downloaded file (zips through `scan_zip_archive`, pickles through `scan_file`, anything else
  skipped; its torch-only file sniffing replaced by zipfile.is_zipfile and the first byte), for
  a fairer view of what fickling can read.
- modelaudit (`modelaudit scan FILE --format json --no-cache -q -o OUT`, with
  PROMPTFOO_DISABLE_TELEMETRY=1): exit 1 unsafe, exit 2 error (unsafe if it still reports a
  critical issue).

The peers run in PEERS_VENV (default target/bench/peers, made and filled from PyPI on first use),
one worker process per peer that imports
the peer's CLI once (their imports take seconds; modelaudit's ~5 s) and then, for each file,
forks a child that calls the CLI's entry point with the same arguments as the command line, so
each file sees the state of a fresh CLI process; a per-file timeout kills and restarts the
worker. Peers named by `--isolated` (default: modelaudit) run as one CLI process per file
instead: modelaudit's verdict on some benign files (a joblib dump) differs in a forked worker,
the other peers gave the same verdicts both ways on the files compared.

Status per file and scanner: unsafe, safe, error, skip (the scanner does not read this kind of
file), timeout. Caught = unsafe on an `unsafe` case; a false positive = unsafe on a `safe` case;
errors and timeouts are counted apart and are not catches.
"""
import argparse
import concurrent.futures
import json
import os
import re
import select
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PEERS = ["picklescan", "modelscan", "fickling", "fickling-lib", "modelaudit"]

# ---------------------------------------------------------------------------------------------
# The worker, run with the peers' interpreter: one JSON request per line on stdin, one JSON
# answer per line on stdout. Each request runs one peer's CLI in-process on one file.

WORKER = r'''
import json, os, sys, tempfile, time, traceback
os.environ["PROMPTFOO_DISABLE_TELEMETRY"] = "1"
peer = sys.argv[1]

def run_cli(fn):
    # In the forked child: stdout and stderr go to real files (fds 1 and 2), as for a CLI
    # process; a peer may hand them to a subprocess, which a StringIO would break.
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(out.fileno(), 1)
        os.dup2(err.fileno(), 2)
        sys.stdout = os.fdopen(1, "w", closefd=False)
        sys.stderr = os.fdopen(2, "w", closefd=False)
        try:
            rc = fn()
        except SystemExit as e:
            rc = e.code if isinstance(e.code, int) else (0 if e.code is None else 2)
        except BaseException:
            traceback.print_exc()
            rc = 99  # the peer crashed: an error, not a verdict
        sys.stdout.flush()
        sys.stderr.flush()
        out.seek(0)
        err.seek(0)
        return rc, out.read()[-4000:], err.read()[-4000:]

def with_argv(argv, fn):
    def go():
        sys.argv = argv
        return fn()
    return go

def picklescan(path, tmp):
    from picklescan.cli import main
    return run_cli(with_argv(["picklescan", "-p", path], main)) + (None,)

def modelscan(path, tmp):
    from modelscan.cli import main
    report = os.path.join(tmp, "modelscan.json")
    rc, out, err = run_cli(with_argv(["modelscan", "scan", "-p", path, "-r", "json", "-o", report], main))
    return rc, out, err, (json.load(open(report)) if os.path.exists(report) else None)

def fickling(path, tmp):
    from fickling.cli import main
    return run_cli(lambda: main(["fickling", "--check-safety", path])) + (None,)

def fickling_lib(path, tmp):
    # As fickling's CLI drives its library for a downloaded Hugging Face file.
    from pathlib import PurePosixPath
    import zipfile
    from fickling.cli import HF_RAW_PICKLE_EXTENSIONS, HF_ZIP_PICKLE_EXTENSIONS
    from fickling.loader import scan_file, scan_zip_archive
    report = os.path.join(tmp, "fickling.json")
    def go():
        # fickling.polyglot.find_file_properties needs torch, which the peers' venv lacks:
        # zipfile.is_zipfile and the first byte stand in for it.
        ext = PurePosixPath(path).suffix.lower()
        with open(path, "rb") as f:
            first = f.read(1)
        if zipfile.is_zipfile(path) or ext in HF_ZIP_PICKLE_EXTENSIONS:
            results = list(scan_zip_archive(path, graceful=True, json_output_path=report).values())
        elif first in (b"\x80", b"(", b"c", b"]", b"}", b")") or ext in HF_RAW_PICKLE_EXTENSIONS:
            results = [scan_file(path, graceful=True, json_output_path=report)]
        else:
            return 3  # skipped: 7z, tar, npy or an unknown extension
        if any(not r.is_safe for r in results):
            return 1
        return 2 if any(r.errors for r in results) else 0
    return run_cli(go) + (None,)

def modelaudit(path, tmp):
    from modelaudit.cli import main
    report = os.path.join(tmp, "modelaudit.json")
    rc, out, err = run_cli(with_argv(["modelaudit", "scan", path, "--format", "json", "--no-cache", "-q",
                                      "-o", report], main))
    return rc, out, err, (json.load(open(report)) if os.path.exists(report) else None)

fn = {"picklescan": picklescan, "modelscan": modelscan, "fickling": fickling,
      "fickling-lib": fickling_lib, "modelaudit": modelaudit}[peer]
# Import the peer once; each file is then scanned in a forked child, so that no state (module
# caches, imports a scan makes) carries from one file to the next: as a fresh CLI process.
__import__({"picklescan": "picklescan.cli", "modelscan": "modelscan.cli", "fickling": "fickling.cli",
            "fickling-lib": "fickling.loader", "modelaudit": "modelaudit.cli"}[peer])
answers = os.fdopen(os.dup(1), "w")  # the parent reads answers here; fd 1 is the children's
answers.write(json.dumps({"ready": True}) + "\n")
answers.flush()
for line in sys.stdin:
    req = json.loads(line)
    start = time.monotonic()
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        with tempfile.TemporaryDirectory() as tmp:
            os.chdir(tmp)  # fickling and modelscan read or write files in the working folder
            rc, out, err, data = fn(req["file"], tmp)
        with os.fdopen(w, "w") as pipe:
            pipe.write(json.dumps({"rc": rc, "out": out, "err": err, "report": data}))
        os._exit(0)
    os.close(w)
    with os.fdopen(r) as pipe:
        text = pipe.read()
    os.waitpid(pid, 0)
    answer = json.loads(text) if text else {"rc": 99, "out": "", "err": "the child died", "report": None}
    answer["secs"] = time.monotonic() - start
    answers.write(json.dumps(answer) + "\n")
    answers.flush()
'''

ISOLATED_ARGV = {
    "picklescan": lambda b, f, tmp: [f"{b}/picklescan", "-p", f],
    "modelscan": lambda b, f, tmp: [f"{b}/modelscan", "scan", "-p", f, "-r", "json", "-o", f"{tmp}/modelscan.json"],
    "fickling": lambda b, f, tmp: [f"{b}/fickling", "--check-safety", f],
    "modelaudit": lambda b, f, tmp: [f"{b}/modelaudit", "scan", f, "--format", "json", "--no-cache", "-q",
                                     "-o", f"{tmp}/modelaudit.json"],
}


class Worker:
    def __init__(self, python, peer, timeout):
        self.python, self.peer, self.timeout = python, peer, timeout
        self.proc = None

    def start(self):
        env = dict(os.environ, PROMPTFOO_DISABLE_TELEMETRY="1")
        self.proc = subprocess.Popen([self.python, "-P", "-c", WORKER, self.peer], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                                     env=env, cwd=tempfile.gettempdir(), start_new_session=True)
        line = self.readline(600)
        if line is None or not json.loads(line).get("ready"):
            raise RuntimeError(f"the {self.peer} worker did not start")

    def readline(self, timeout):
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        return self.proc.stdout.readline() if ready else None

    def stop(self):
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, 9)
            self.proc.wait()
        self.proc = None

    def run(self, path):
        if self.proc is None or self.proc.poll() is not None:
            self.start()
        self.proc.stdin.write(json.dumps({"file": path}) + "\n")
        self.proc.stdin.flush()
        line = self.readline(self.timeout)
        if not line:
            self.stop()  # hung or crashed: a fresh worker for the next file
            return {"rc": None, "out": "", "err": "timeout or crash", "report": None}
        return json.loads(line)


def run_isolated(bindir, peer, path, timeout):
    with tempfile.TemporaryDirectory() as tmp:
        try:
            p = subprocess.run(ISOLATED_ARGV[peer](bindir, path, tmp), capture_output=True, text=True,
                               timeout=timeout, cwd=tmp, env=dict(os.environ, PROMPTFOO_DISABLE_TELEMETRY="1"))
        except subprocess.TimeoutExpired:
            return {"rc": None, "out": "", "err": "timeout", "report": None}
        report = None
        for name in ("modelscan.json", "modelaudit.json"):
            if os.path.exists(os.path.join(tmp, name)):
                with open(os.path.join(tmp, name)) as f:
                    report = json.load(f)
        return {"rc": p.returncode, "out": p.stdout[-4000:], "err": p.stderr[-4000:], "report": report}


def classify(peer, res):
    """(status, detail) from a peer's exit code, output and report."""
    rc, out, report = res["rc"], res["out"] or "", res.get("report")
    if rc is None:
        return "timeout", res.get("err", "")
    if peer == "picklescan":
        infected = re.search(r"Infected files: (\d+)", out)
        dangerous = re.search(r"Dangerous globals: (\d+)", out)
        if (infected and int(infected.group(1))) or (dangerous and int(dangerous.group(1))):
            return "unsafe", "; ".join(l for l in out.splitlines() if "FOUND" in l)[:200]
        return {0: ("safe", ""), 1: ("unsafe", "")}.get(rc, ("error", (res.get("err") or out)[-200:]))
    if peer == "modelscan":
        issues = (report or {}).get("issues") or []
        if issues:
            return "unsafe", "; ".join(f"{i.get('module')}.{i.get('operator')}" for i in issues)[:200]
        errors = (report or {}).get("errors") or []
        if rc == 3 and not errors:
            return "skip", "no supported file"
        if rc != 0 or errors:  # exit 3 with errors: it gave up on the only file
            return "error", json.dumps(errors)[:200] if errors else (res.get("err") or out)[-200:]
        return "safe", ""
    if peer in ("fickling", "fickling-lib"):
        if rc == 1 and "Traceback (most recent call last)" in (res.get("err") or ""):
            return "error", res["err"][-200:]  # a crash exits 1 too (an --isolated run)
        if rc == 3:
            return "skip", "not a format it reads"
        return {0: ("safe", ""), 1: ("unsafe", "")}.get(rc, ("error", (res.get("err") or out)[-200:]))
    if peer == "modelaudit":
        issues = (report or {}).get("issues") or []
        critical = [i for i in issues if i.get("severity") == "critical"]
        if rc == 1 or critical:
            shown = critical or [i for i in issues if i.get("severity") in ("warning", "critical")] or issues
            return "unsafe", "; ".join(i.get("message", "") for i in shown)[:200]
        if rc == 0:
            return "safe", ""
        return "error", "; ".join(i.get("message", "") for i in issues)[:200] or (res.get("err") or out)[-200:]
    raise ValueError(peer)


# ---------------------------------------------------------------------------------------------
# envlock


def make_dummy_venv(where):
    venv = os.path.join(where, "venv")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", venv], check=True)
    return os.path.join(venv, "bin", "python")


def run_envlock(binary, python, path, timeout):
    with tempfile.TemporaryDirectory() as tmp:
        lock = os.path.join(tmp, "out.lock")
        try:
            p = subprocess.run([binary, "snapshot", "--python", python, "--model", path, "-o", lock],
                               capture_output=True, text=True, timeout=timeout, cwd=tmp)
        except subprocess.TimeoutExpired:
            return "timeout", ""
        if not os.path.exists(lock):
            return "error", p.stderr.strip().splitlines()[-1][:200] if p.stderr.strip() else f"exit {p.returncode}"
        with open(lock, "rb") as f:
            data = tomllib.load(f)
        unsafe, fmt = [], []
        for model in data.get("models", []):
            fmt.append(model.get("format", "?"))
            unsafe += model.get("unsafe", [])
            for sub in model.get("files", []):
                unsafe += sub.get("unsafe", [])
        if unsafe:
            return "unsafe", ", ".join(unsafe)[:200]
        return "safe", "format " + ",".join(fmt)


# ---------------------------------------------------------------------------------------------
# The peers' original samples, from the fetched mirrors.

MIRRORS = {
    "picklescan": ("mmaitre314+picklescan", ["tests/data/", "tests/data2/"]),
    "modelscan": ("protectai+modelscan", ["tests/data/"]),
    "fickling": ("trailofbits+fickling", ["test/fixtures/"]),
    "modelaudit": ("promptfoo+modelaudit", ["tests/assets/"]),
}
SKIP_EXT = (".py", ".json", ".j2", ".jinja", ".template", ".yaml", ".yml", ".csv", ".txt", ".md")


def original_label(peer, path):
    """The peer's own label for one of its samples (from its tests), or None to leave it out."""
    name = os.path.basename(path)
    if path.endswith(SKIP_EXT) or name == "LICENSE" or "/jinja2/" in path or "/manifests/" in path:
        return None
    if peer == "picklescan":
        safe = (name.startswith("benign") or name.startswith("int_array") or name.startswith("object_array")
                or name in ("pytorch_model.bin", "new_pytorch_model.bin", "bad_pytorch.pt", "not_a_pickle.bin"))
        return "safe" if safe else "unsafe"
    if peer == "modelscan":
        return "safe" if name == "password_protected.zip" else "unsafe"
    if peer == "fickling":
        return "safe"  # the TorchScript squeezenet fixture
    if peer == "modelaudit":
        if "/safetensors/" in path and not name.startswith("safe"):
            return None  # suspicious strings in metadata: nothing a loader runs
        if "license_scenarios" in path or name.startswith("safe") or "/safe_" in path or name == "pipeline.skops":
            return "safe"
        if name in ("decode_exec_chain.pkl", "malicious_model_realistic.pkl", "simple_nested.pkl") or \
                name.startswith("nested_pickle_"):
            return "data-only"  # a dict of strings/bytes: no global, so loading calls nothing
        return "unsafe"
    return None


def extract_originals(out, mirrors_root):
    os.makedirs(out, exist_ok=True)
    cases, absent = [], []
    for peer, (mirror, folders) in MIRRORS.items():
        git_dir = os.path.join(mirrors_root, mirror, "repo")
        listing = subprocess.run(["git", "--git-dir", git_dir, "ls-tree", "-r", "-l", "HEAD", "--", *folders],
                                 check=True, capture_output=True, text=True).stdout
        for line in listing.splitlines():
            meta, path = line.split("\t", 1)
            label = original_label(peer, path)
            if label is None:
                continue
            got = subprocess.run(["git", "--git-dir", git_dir, "show", f"HEAD:{path}"], capture_output=True)
            data = got.stdout
            if got.returncode != 0 or data.startswith(b"version https://git-lfs"):
                absent.append(f"{peer} {path}")  # a large blob the snapshot lists but does not hold
                continue
            rel = os.path.join(peer, path)
            os.makedirs(os.path.dirname(os.path.join(out, rel)), exist_ok=True)
            with open(os.path.join(out, rel), "wb") as f:
                f.write(data)
            cases.append((rel, label, f"{peer} {path}"))
    with open(os.path.join(out, "cases.toml"), "w") as f:
        f.write("# The peers' committed test samples, labelled as their own tests label them.\n")
        for rel, label, source in cases:
            f.write(f'\n[[case]]\nfile = "{rel}"\nexpect = "{label}"\ngroup = "{rel.split("/")[0]}"\n'
                    f'source = "{source}"\n')
    print(f"{len(cases)} files into {out}: " + ", ".join(
        f"{sum(c[1] == k for c in cases)} {k}" for k in ("unsafe", "safe", "data-only")))
    for path in absent:
        print(f"absent from the mirror, left out: {path}")


# ---------------------------------------------------------------------------------------------


def load_cases(folder):
    manifest = os.path.join(folder, "cases.toml")
    if os.path.exists(manifest):
        with open(manifest, "rb") as f:
            return [dict(c, path=os.path.abspath(os.path.join(folder, c["file"]))) for c in tomllib.load(f)["case"]]
    files = sorted(os.path.abspath(os.path.join(d, n)) for d, _, ns in os.walk(folder) for n in ns)
    return [dict(file=os.path.relpath(p, folder), path=p, expect="?", group="?") for p in files]


def scan(args):
    cases = [c for folder in args.folders for c in load_cases(folder)]
    if args.only:
        cases = [c for c in cases if re.search(args.only, c["file"])]
    scanners = args.scanners.split(",")
    results = {c["path"]: {} for c in cases}
    isolated = set(args.isolated.split(",")) if args.isolated else set()
    work = tempfile.mkdtemp(prefix="envlock-scanners-")
    try:
        per_file = []  # (scanner, case): run in the shared pool, one process each
        sequences = []  # a worker's files, one after the other in its own thread
        if "envlock" in scanners:
            binary = os.path.abspath(args.envlock)
            if not os.access(binary, os.X_OK):
                sys.exit(f"no envlock binary at {binary}: build it (cargo build --release) or pass --envlock")
            python = make_dummy_venv(work)
            per_file += [("envlock", c) for c in cases]
        bindir = os.path.join(args.peers_venv, "bin")
        for peer in [s for s in scanners if s in PEERS]:
            if peer in isolated and peer != "fickling-lib":
                per_file += [(peer, c) for c in cases]
            else:
                sequences.append(peer)

        total = len(per_file) + len(sequences) * len(cases)
        done = [0]

        def tick():
            done[0] += 1
            if done[0] % 100 == 0 or done[0] == total:
                print(f"  {done[0]}/{total} scans", file=sys.stderr, flush=True)

        def one(scanner, c):
            if scanner == "envlock":
                results[c["path"]]["envlock"] = run_envlock(binary, python, c["path"], args.timeout)
            else:
                results[c["path"]][scanner] = classify(scanner, run_isolated(bindir, scanner, c["path"], args.timeout))
            tick()

        def sequence(peer):
            worker = Worker(os.path.join(bindir, "python"), peer, args.timeout)
            try:
                for c in cases:
                    results[c["path"]][peer] = classify(peer, worker.run(c["path"]))
                    tick()
            finally:
                worker.stop()

        start = time.monotonic()
        with concurrent.futures.ThreadPoolExecutor(max_workers=len(sequences) or 1) as seq_pool, \
                concurrent.futures.ThreadPoolExecutor(max_workers=args.jobs) as pool:
            futures = [seq_pool.submit(sequence, p) for p in sequences]
            futures += [pool.submit(one, s, c) for s, c in per_file]
            for fut in futures:
                fut.result()
        elapsed = time.monotonic() - start
    finally:
        shutil.rmtree(work, ignore_errors=True)

    report(cases, scanners, results, args, elapsed)


def report(cases, scanners, results, args, elapsed):
    unsafe = [c for c in cases if c["expect"] == "unsafe"]
    safe = [c for c in cases if c["expect"] == "safe"]
    data_only = [c for c in cases if c["expect"] == "data-only"]
    if args.per_file:
        width = max(len(c["file"]) for c in cases)
        print(f"{'file':{width}}  {'expect':9} " + " ".join(f"{s:12}" for s in scanners))
        for c in cases:
            row = []
            for s in scanners:
                status = results[c["path"]][s][0]
                mark = ""
                if c["expect"] == "unsafe" and status != "unsafe":
                    mark = "!"  # missed
                elif c["expect"] == "safe" and status == "unsafe":
                    mark = "*"  # false positive
                row.append(f"{status + mark:12}")
            print(f"{c['file']:{width}}  {c['expect']:9} " + " ".join(row))
        print("\n! = an unsafe file not caught, * = a safe file flagged\n")
    print(f"{len(cases)} files: {len(unsafe)} unsafe, {len(safe)} safe"
          + (f", {len(data_only)} data-only (not scored)" if data_only else "") + f" ({elapsed:.0f} s)\n")
    print(f"{'scanner':13} {'caught':>12} {'rate':>6} {'false pos.':>11} {'errors':>7} {'timeouts':>9} {'skipped':>8}"
          + ("  data-only flagged" if data_only else ""))
    for s in scanners:
        st = {c["path"]: results[c["path"]][s][0] for c in cases}
        caught = sum(st[c["path"]] == "unsafe" for c in unsafe)
        fp = sum(st[c["path"]] == "unsafe" for c in safe)
        errors = sum(v == "error" for v in st.values())
        timeouts = sum(v == "timeout" for v in st.values())
        skipped = sum(v == "skip" for v in st.values())
        rate = f"{100 * caught / len(unsafe):.0f}%" if unsafe else "-"
        line = (f"{s:13} {f'{caught}/{len(unsafe)}':>12} {rate:>6} {f'{fp}/{len(safe)}':>11} {errors:>7}"
                f" {timeouts:>9} {skipped:>8}")
        if data_only:
            line += f"  {sum(st[c['path']] == 'unsafe' for c in data_only)}/{len(data_only)}"
        print(line)
    groups = sorted({c.get("group", "?") for c in cases})
    if len(groups) > 1 and args.groups:
        print(f"\ncaught per group (unsafe files; safe files flagged in brackets)")
        print(f"{'group':14} {'n':>4} " + " ".join(f"{s:>12}" for s in scanners))
        for g in groups:
            gu = [c for c in unsafe if c.get("group") == g]
            gs = [c for c in safe if c.get("group") == g]
            cells = []
            for s in scanners:
                if gu:
                    cells.append(f"{sum(results[c['path']][s][0] == 'unsafe' for c in gu)}/{len(gu)}")
                else:
                    cells.append(f"[{sum(results[c['path']][s][0] == 'unsafe' for c in gs)}/{len(gs)}]")
            print(f"{g:14} {len(gu) or len(gs):>4} " + " ".join(f"{x:>12}" for x in cells))
    if args.json:
        with open(args.json, "w") as f:
            json.dump([dict(file=c["file"], expect=c["expect"], group=c.get("group"),
                            results={s: list(results[c["path"]][s]) for s in scanners}) for c in cases],
                      f, indent=1)


def peers_venv(folder):
    """A venv with the four peers (and numpy, which their numpy readers import)."""
    print(f"installing the peers into {folder} (once)", file=sys.stderr)
    subprocess.run([sys.executable, "-m", "venv", folder], check=True)
    subprocess.run([os.path.join(folder, "bin", "pip"), "install", "--quiet", "picklescan",
                    "modelscan", "fickling", "modelaudit", "numpy"], check=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd")
    sp = sub.add_parser("scan", help="scan folders and print the catch rates")
    sp.add_argument("folders", nargs="+")
    sp.add_argument("--envlock", default=os.path.join(ROOT, "target", "release", "envlock"))
    sp.add_argument("--peers-venv", default=os.path.join(ROOT, "target", "bench", "peers"))
    sp.add_argument("--scanners", default=",".join(["envlock"] + PEERS))
    sp.add_argument("--timeout", type=float, default=120)
    sp.add_argument("--jobs", type=int, default=2,
                    help="processes at once for envlock and the --isolated peers (the workers run beside them)")
    sp.add_argument("--isolated", default="modelaudit",
                    help="peers run as one CLI process per file (comma list; default modelaudit, whose "
                         "verdicts differ when it runs in a forked worker); '' for none")
    sp.add_argument("--per-file", action="store_true")
    sp.add_argument("--groups", action="store_true", help="catch rates per group of cases")
    sp.add_argument("--only", help="regex on file names")
    sp.add_argument("--json", help="write every verdict to this file")
    op = sub.add_parser("originals", help="extract the peers' committed samples from the mirrors")
    op.add_argument("out")
    op.add_argument("--mirrors", default="/work/.mirror")
    argv = sys.argv[1:]
    if argv and argv[0] not in ("scan", "originals", "-h", "--help"):
        argv = ["scan"] + argv
    args = ap.parse_args(argv)
    if args.cmd == "originals":
        extract_originals(args.out, args.mirrors)
    elif args.cmd == "scan":
        peers = [name for name in args.scanners.split(",") if name and name != "envlock"]
        if peers and not os.path.exists(os.path.join(args.peers_venv, "bin", "python")):
            peers_venv(args.peers_venv)
        scan(args)
    else:
        ap.print_help()


if __name__ == "__main__":
    main()
