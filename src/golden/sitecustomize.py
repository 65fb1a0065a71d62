# envlock's tracer for golden runs. envlock puts its folder first on PYTHONPATH, so every
# Python process the case starts imports this first. It records, for its process, the
# modules imported after start-up and the shared objects mapped, into a file of its own in
# $ENVLOCK_TRACE, written as they appear (servers fork, and are stopped by signals: nothing
# waits for exit). Then it runs the sitecustomize it shadows, and leaves sys.path as it was.
# It reads no user data and changes no behaviour.
import os
import sys


def _envlock_trace():
    out = os.environ.get("ENVLOCK_TRACE")
    here = os.path.dirname(os.path.abspath(__file__))
    if out and os.path.isdir(out):
        try:
            _envlock_record(out)
        except Exception:
            pass  # an interpreter without audit hooks (before 3.8): untraced, said so
    _envlock_chain(here)


def _envlock_record(out):
    import time

    state = {"pid": 0, "fd": -1, "seen": set(), "last": 0.0}

    def start():
        # One file per process: a forked worker gets its own (it inherited the parent's fd).
        state["pid"] = os.getpid()
        name = "%d-%s.trace" % (state["pid"], os.urandom(4).hex())
        try:
            state["fd"] = os.open(
                os.path.join(out, name), os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o644
            )
        except OSError:
            state["fd"] = -1
        write("p %d\n" % state["pid"])

    def write(text):
        if state["fd"] >= 0:
            try:
                os.write(state["fd"], text.encode("utf-8", "replace"))
            except OSError:
                pass

    def maps():
        # The shared objects mapped so far; read at most every 5 ms, on imports.
        state["last"] = time.monotonic()
        try:
            with open("/proc/self/maps", "rb") as handle:
                data = handle.read()
        except OSError:
            return
        new = []
        for line in data.split(b"\n"):
            at = line.find(b" /")
            if at < 0 or b".so" not in line:
                continue
            path = line[at + 1 :].strip()
            if path not in state["seen"]:
                state["seen"].add(path)
                new.append("l " + path.decode("utf-8", "replace") + "\n")
        if new:
            write("".join(new))

    def hook(event, args):
        if event != "import":
            return
        if os.getpid() != state["pid"]:
            start()
        write("m %s\n" % args[0])
        if time.monotonic() - state["last"] > 0.005:
            maps()

    start()
    maps()
    sys.addaudithook(hook)
    # A normal exit reads the maps once more; a signal does not need it (the imports after
    # the last read are recorded, only their own libraries might be missed).
    import atexit

    atexit.register(maps)


def _envlock_chain(here):
    # The sitecustomize this one shadows (the image's or the venv's), run as it would be.
    import importlib.machinery
    import importlib.util

    rest = [entry for entry in sys.path if os.path.abspath(entry or ".") != here]
    sys.path[:] = rest
    spec = importlib.machinery.PathFinder.find_spec("sitecustomize", rest)
    if spec is not None and spec.loader is not None:
        module = importlib.util.module_from_spec(spec)
        sys.modules["sitecustomize"] = module
        spec.loader.exec_module(module)


_envlock_trace()
del _envlock_trace, _envlock_record, _envlock_chain
