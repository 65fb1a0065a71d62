# envlock's interpreter probe. Run as `python -c <this>`; prints one JSON object on stdout.
# It only asks the interpreter about itself: no network, no imports beyond the standard
# library, no writes. It must run on any CPython/PyPy 3.6+ (images carry old interpreters).
# The answer's keys are read by src/capture/python/probe.rs; bump "probe" (and PROBE_FORMAT
# there) when they change.
import json
import os
import sys
import sysconfig


def version_string(info):
    text = "%d.%d.%d" % (info.major, info.minor, info.micro)
    if info.releaselevel != "final":
        text += info.releaselevel[0] + str(info.serial)
    return text


def libc():
    try:
        family, _, version = os.confstr("CS_GNU_LIBC_VERSION").partition(" ")
        if family and version:
            return "glibc", version
    except (AttributeError, ValueError, OSError):
        pass
    import glob

    if glob.glob("/lib/ld-musl-*.so.1"):
        return "musl", None
    return None, None


def os_release():
    for path in ("/etc/os-release", "/usr/lib/os-release"):
        try:
            with open(path, "rb") as handle:
                return handle.read(65536).decode("utf-8", "replace")
        except OSError:
            pass
    return None


# With `--files WANTED` (inside an image, where envlock cannot read the file system directly),
# the answer also carries the metadata files on sys.path, so envlock's own reader parses them
# exactly as on the host. WANTED is JSON from envlock (src/capture/python/metadata.rs) naming
# which folders and files are metadata, and the most bytes to send of one file. Bytes travel
# as Latin-1 code points.
def read_bounded(path, limit):
    try:
        with open(path, "rb") as handle:
            return handle.read(limit).decode("latin-1")
    except OSError:
        return None


def ends_with_any(name, suffixes):
    lower = name.lower()
    return any(lower.endswith(suffix) for suffix in suffixes)


def site_files(path, wanted):
    limit = wanted["limit"]
    listings = {}
    contents = {}
    for folder in path:
        try:
            names = os.listdir(folder)
        except OSError:
            continue
        entries = []
        for name in names:
            full = os.path.join(folder, name)
            is_dir = os.path.isdir(full)
            entries.append([name, is_dir])
            if is_dir and ends_with_any(name, wanted["folders"]):
                for inner in wanted["files"]:
                    text = read_bounded(os.path.join(full, inner), limit)
                    if text is not None:
                        contents[os.path.join(full, inner)] = text
            elif not is_dir and ends_with_any(name, wanted["single"]):
                text = read_bounded(full, limit)
                if text is not None:
                    contents[full] = text
        listings[folder] = entries
    return {"listings": listings, "contents": contents}


def conda_records(prefixes, wanted):
    """The package records of conda prefixes, each cut down to the keys envlock keeps."""
    listings = {}
    contents = {}
    for prefix in prefixes:
        folder = os.path.join(prefix, wanted["conda_meta"])
        try:
            names = sorted(os.listdir(folder))
        except OSError:
            continue
        listings[folder] = [[name, False] for name in names if name.endswith(".json")]
        for name, _ in listings[folder]:
            try:
                with open(os.path.join(folder, name), "rb") as handle:
                    record = json.loads(handle.read(wanted["limit"]).decode("utf-8"))
                kept = {key: record[key] for key in wanted["conda_keys"] if key in record}
                contents[os.path.join(folder, name)] = json.dumps(kept)
            except (OSError, ValueError, AttributeError, TypeError):
                contents[os.path.join(folder, name)] = ""
    return listings, contents


def numeric_libraries(contents, request):
    """The shared objects that RECORDs list under the numeric prefixes, and the system paths
    asked for: by real path, the text after each version needle found in them, and for the
    system ones their sha256; and where each path (extensions too) really is. Envlock
    decides what the text means."""
    import csv

    prefixes = tuple(request["prefixes"])
    extensions = tuple(request["extensions"])
    needles = [needle.encode("latin-1") for needle in request["needles"]]
    candidates = []
    linkers = []
    for name, text in contents.items():
        if os.path.basename(name) != "RECORD":
            continue
        site = os.path.dirname(os.path.dirname(name))
        for row in csv.reader(text.splitlines()):
            relative = row[0] if row else ""
            base = relative.rsplit("/", 1)[-1]
            inside = not relative.startswith("/") and ".." not in relative.split("/")
            if inside and base.startswith(prefixes) and ".so" in base:
                candidates.append((os.path.join(site, relative), False))
            elif inside and relative.startswith(extensions) and relative.endswith(".so"):
                linkers.append(os.path.join(site, relative))
    candidates.extend((path, True) for path in request["paths"])
    found = {}
    resolved = {}
    for path, system in candidates:
        real = os.path.realpath(path)
        if not os.path.isfile(real):
            resolved[path] = None
            continue
        resolved[path] = real
        if real in found:
            continue
        try:
            found[real] = scan_library(real, needles, system)
        except OSError:
            continue
    for path in linkers:
        real = os.path.realpath(path)
        resolved[path] = real if os.path.isfile(real) else None
    return {"libraries": found, "resolved": resolved}


def scan_library(path, needles, digest):
    """Each needle with the 48 bytes after it, wherever it is in the file (up to 32 times
    each), and the file's sha256 if asked."""
    hasher = hashlib_sha256() if digest else None
    found = {needle: set() for needle in needles}
    tail = b""
    with open(path, "rb") as handle:
        while True:
            chunk = handle.read(1 << 22)
            if hasher is not None:
                hasher.update(chunk)
            window = tail + chunk
            for needle, seen in found.items():
                at = window.find(needle)
                while at >= 0 and len(seen) < 32:
                    seen.add(window[at:at + len(needle) + 48].decode("latin-1"))
                    at = window.find(needle, at + 1)
            if not chunk:
                break
            tail = window[-128:]
    return {
        "snippets": sorted(snippet for seen in found.values() for snippet in seen),
        "sha256": hasher.hexdigest() if hasher is not None else None,
    }


def hashlib_sha256():
    import hashlib

    return hashlib.sha256()


def main():
    path = list(sys.path)
    # `-c` puts the current folder first as ''; it belongs to envlock's call, not the runtime.
    if path and path[0] == "":
        path = path[1:]
    path = [os.path.abspath(entry) if entry else entry for entry in path]
    uname = os.uname() if hasattr(os, "uname") else None
    implementation = sys.implementation
    full_version = "%d.%d.%d" % sys.version_info[:3]
    if sys.version_info.releaselevel != "final":
        full_version += sys.version_info.releaselevel[0] + str(sys.version_info.serial)
    markers = {
        "implementation_name": implementation.name,
        "implementation_version": version_string(implementation.version),
        "os_name": os.name,
        "platform_machine": uname.machine if uname else "",
        "platform_python_implementation": {"cpython": "CPython", "pypy": "PyPy"}.get(
            implementation.name, implementation.name
        ),
        "platform_release": uname.release if uname else "",
        "platform_system": uname.sysname if uname else "",
        "platform_version": uname.version if uname else "",
        "python_full_version": full_version,
        "python_version": "%d.%d" % sys.version_info[:2],
        "sys_platform": sys.platform,
    }
    family, libc_version = libc()
    answer = {
        "probe": 1,
        "implementation": implementation.name,
        "version": full_version,
        "executable": sys.executable,
        "prefix": sys.prefix,
        "base_prefix": getattr(sys, "base_prefix", sys.prefix),
        "soabi": sysconfig.get_config_var("SOABI"),
        "cache_tag": implementation.cache_tag,
        "sys_path": path,
        "markers": markers,
        "libc": family,
        "libc_version": libc_version,
        "os_release": os_release(),
    }
    arguments = dict(zip(sys.argv[1::2], sys.argv[2::2]))
    if "--files" in arguments:
        wanted = json.loads(arguments["--files"])
        files = site_files(path, wanted)
        prefixes = [sys.prefix, answer["base_prefix"]]
        listings, contents = conda_records(prefixes, wanted)
        files["listings"].update(listings)
        files["contents"].update(contents)
        answer["files"] = files
        if "--numerics" in arguments:
            request = json.loads(arguments["--numerics"])
            answer["numerics"] = numeric_libraries(files["contents"], request)
    sys.stdout.write(json.dumps(answer))


main()
