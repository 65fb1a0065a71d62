# envlock's job runner, run with the image's Python (-S) in the probe's container: runs
# the jobs listed in /envlock/jobs/jobs.json (the probe, then the golden command cases, the
# probe beside them), each with its variables over the container's, its working folder,
# stdin and time limit, in its own session (killed whole on timeout). Each job's output goes
# to /envlock/out/N.out, N.err and N.status (JSON: "code", or "timeout", or "error"); at
# the end every file under /envlock/out (those and what the jobs wrote there) is sent on
# stdout, each as a line "PATH SIZE" and its bytes, then ".whole 0" when nothing was left out. It decides nothing and reads no other
# file.
import json
import os
import signal
import stat
import subprocess
import sys
import time

OUT = "/envlock/out"


def status(index, value):
    with open(os.path.join(OUT, "%d.status" % index), "w") as handle:
        json.dump(value, handle)


def start(index, job, python):
    env = dict(os.environ)
    env.update(job.get("env") or {})
    for name, first in (job.get("prepend") or {}).items():
        env[name] = first + ":" + env[name] if env.get(name) else first
    if job.get("path-first"):
        env["PATH"] = os.path.dirname(python) + ":" + env.get("PATH", "")
    stdin = open(job["stdin"], "rb") if job.get("stdin") else subprocess.DEVNULL
    out = open(os.path.join(OUT, "%d.out" % index), "wb")
    err = open(os.path.join(OUT, "%d.err" % index), "wb")
    try:
        return subprocess.Popen(
            job["argv"],
            env=env,
            cwd=job.get("cwd") or None,
            stdin=stdin,
            stdout=out,
            stderr=err,
            start_new_session=True,
        )
    except Exception as error:  # an OSError, or an argv Popen refuses (empty, a NUL)
        program = job["argv"][0] if job["argv"] else ""
        missing = isinstance(error, FileNotFoundError) and error.filename in (program, None)
        status(index, {"error": "not-found" if missing else "not-started", "detail": str(error)})
        return None
    finally:
        out.close()
        err.close()
        if stdin is not subprocess.DEVNULL:
            stdin.close()


def finish(index, job, process, started):
    if process is None:
        return
    left = max(0.0, job["timeout"] - (time.monotonic() - started))
    try:
        code = process.wait(timeout=left)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except OSError:
            pass
        process.wait()
        status(index, {"timeout": True})
        return
    status(index, {"code": code})


def main():
    python = sys.argv[1]
    with open("/envlock/jobs/jobs.json") as handle:
        jobs = json.load(handle)
    background = []
    for index, job in enumerate(jobs):
        started = time.monotonic()
        process = start(index, job, python)
        if job.get("background"):
            background.append((index, job, process, started))
        else:
            finish(index, job, process, started)
    for index, job, process, started in background:
        finish(index, job, process, started)
    send()


LIMIT = 512 << 20  # what envlock reads back at most


def send():
    # Regular files only (never a link or a FIFO a job left), at most LIMIT bytes in all.
    out = sys.stdout.buffer
    left = LIMIT
    for folder, _, names in os.walk(OUT):
        for name in sorted(names):
            path = os.path.join(folder, name)
            try:
                if not stat.S_ISREG(os.lstat(path).st_mode):
                    continue
                with open(path, "rb") as handle:
                    data = handle.read(left + 1)
            except OSError:
                continue
            if len(data) > left or "\n" in name:
                out.flush()
                return  # without the end mark: envlock reads the answer as cut short
            left -= len(data)
            out.write(("%s %d\n" % (os.path.relpath(path, OUT), len(data))).encode("utf-8", "replace"))
            out.write(data)
    out.write(b".whole 0\n")
    out.flush()


main()
