# envlock's tracer for golden runs. envlock puts its folder first on PYTHONPATH, so every
# Python process the case starts imports this first. It records, for its process, the
# modules imported after start-up and the shared objects mapped, into a file of its own in
# $ENVLOCK_TRACE, written as they appear (servers fork, and are stopped by signals: nothing
# waits for exit). Then it runs the sitecustomize it shadows, and leaves sys.path as it was.
# It reads no user data and changes no behaviour: its finder only watches, and finds nothing.
import os
import sys


def _envlock_trace():
    out = os.environ.get("ENVLOCK_TRACE")
    here = os.path.dirname(os.path.abspath(__file__))
    if out and os.path.isdir(out):
        try:
            _envlock_record(out)
        except Exception:
            pass  # an interpreter too old for it: untraced, and envlock says so
    _envlock_chain(here)


def _envlock_record(out):
    import time

    state = {"pid": 0, "fd": -1, "seen": set(), "last": 0.0}

    def start():
        # One file per process: a forked worker gets its own (it inherited the parent's fd).
        state["pid"] = os.getpid()
        name = "%d-%s.trace" % (state["pid"], os.urandom(4).hex())
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND
        try:
            state["fd"] = os.open(os.path.join(out, name), flags, 0o644)
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
        # The shared objects mapped so far; read on imports, at most every 25 ms.
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

    getpid, monotonic, put = os.getpid, time.monotonic, os.write

    class Watch:
        # First on sys.meta_path: told of every import of a module not loaded yet (not
        # an audit hook, which is called for every audited event and costs far more).
        @staticmethod
        def find_spec(name, path=None, target=None):
            if getpid() != state["pid"]:
                start()
            try:
                put(state["fd"], b"m " + name.encode("utf-8", "replace") + b"\n")
            except OSError:
                pass
            if monotonic() - state["last"] > 0.025:
                maps()
            return None

        @staticmethod
        def invalidate_caches():
            pass

    start()
    state["last"] = time.monotonic()
    sys.meta_path.insert(0, Watch)
    # A normal exit reads the maps once more; a signal does not need it (the imports after
    # the last read are recorded, only their own libraries might be missed).
    import atexit

    atexit.register(maps)


def _envlock_chain(here):
    # The sitecustomize this one shadows (the image's or the venv's), run as it would be,
    # with the import machinery already loaded (importlib.util would cost an import).
    rest = [entry for entry in sys.path if os.path.abspath(entry or ".") != here]
    sys.path[:] = rest
    external = sys.modules.get("_frozen_importlib_external")
    bootstrap = sys.modules.get("_frozen_importlib")
    if external is None or bootstrap is None:
        return
    spec = external.PathFinder.find_spec("sitecustomize", rest)
    if spec is not None and spec.loader is not None:
        module = bootstrap.module_from_spec(spec)
        sys.modules["sitecustomize"] = module
        spec.loader.exec_module(module)


_envlock_trace()
del _envlock_trace, _envlock_record, _envlock_chain
