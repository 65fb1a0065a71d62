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
# exactly as on the host. WANTED is JSON from envlock (src/capture/read/distributions.rs) naming
# which folders and files are metadata, and the most bytes to send of one file. Bytes travel
# as Latin-1 code points.
def read_bounded(path, limit, errors):
    """The first `limit` bytes of a file as Latin-1 text; None when it is absent. Any other
    failure is recorded in `errors`: a read that failed is never an absent file."""
    try:
        with open(path, "rb") as handle:
            return handle.read(limit).decode("latin-1")
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as error:
        errors[path] = str(error)
        return None


def ends_with_any(name, suffixes):
    lower = name.lower()
    return any(lower.endswith(suffix) for suffix in suffixes)


def site_files(path, wanted):
    limit = wanted["limit"]
    listings = {}
    contents = {}
    errors = {}
    for folder in path:
        try:
            names = os.listdir(folder)
        except (FileNotFoundError, NotADirectoryError):
            continue
        except OSError as error:
            if os.path.isdir(folder):
                errors[folder] = str(error)
            continue
        entries = []
        for name in names:
            full = os.path.join(folder, name)
            is_dir = os.path.isdir(full)
            entries.append([name, is_dir])
            if is_dir and ends_with_any(name, wanted["folders"]):
                for inner in wanted["files"]:
                    text = read_bounded(os.path.join(full, inner), limit, errors)
                    if text is not None:
                        contents[os.path.join(full, inner)] = text
            elif not is_dir and (
                ends_with_any(name, wanted["single"])
                or (
                    name.endswith(".pth")
                    and not name.startswith(".")
                    and os.path.basename(folder.rstrip("/")) in wanted["pth_folders"]
                )
            ):
                text = read_bounded(full, limit, errors)
                if text is not None:
                    contents[full] = text
        listings[folder] = entries
    return {"listings": listings, "contents": contents, "errors": errors}


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
    dynamic = {}
    for path in linkers:
        real = os.path.realpath(path)
        resolved[path] = real if os.path.isfile(real) else None
        try:
            dynamic[path] = elf_dynamic(real)
        except (OSError, ValueError, IndexError):
            dynamic[path] = None
    return {"libraries": found, "resolved": resolved, "dynamic": dynamic}


def elf_dynamic(path):
    """DT_NEEDED, and DT_RUNPATH else DT_RPATH, of a 64-bit little-endian shared object."""
    import struct

    with open(path, "rb") as handle:
        sections = elf_sections(handle)
        if sections is None:
            return None
        rows = sections[b""]
        dynamic = next((s for s in rows if s[1] == 6), None)
        if dynamic is None:
            return None
        strings = rows[dynamic[6]]
        handle.seek(dynamic[4])
        entries = handle.read(min(dynamic[5], 1 << 20))
        handle.seek(strings[4])
        text = handle.read(min(strings[5], 16 << 20))
    found = {1: [], 15: [], 29: []}
    for at in range(0, len(entries) - 15, 16):
        tag, value = struct.unpack_from("<qQ", entries, at)
        if tag == 0:
            break
        if tag in found and value < len(text):
            end = text.find(b"\0", value)
            found[tag].append(text[value:end].decode("latin-1"))
    search = found[29] or found[15]
    return {
        "needed": found[1],
        "search": [folder for paths in search for folder in paths.split(":") if folder],
    }


def scan_library(path, needles, digest):
    """Each needle with the 48 bytes after it (up to 256 times each, in file order) in the library's
    read-only data and comment sections, where version strings live (the whole file when
    it has no such sections); the entries of its fatbins, if it has any; and the file's
    sha256 if asked."""
    with open(path, "rb") as handle:
        sections = elf_sections(handle) or {}
        fatbins = None
        if b".nv_fatbin" in sections:
            _, offset, size, _ = sections[b".nv_fatbin"]
            fatbins = fatbin_entries(handle, offset, offset + size)
        parts = []
        for name in (b".rodata", b".comment"):
            if name in sections:
                offset, size = sections[name][1], sections[name][2]
                handle.seek(offset)
                parts.append(handle.read(min(size, 16 << 20)))
        if not parts:
            handle.seek(0)
            parts.append(handle.read(256 << 20))
        hasher = None
        if digest:
            hasher = hashlib_sha256()
            handle.seek(0)
            for chunk in iter(lambda: handle.read(1 << 22), b""):
                hasher.update(chunk)
    found = []
    for needle in needles:
        for index, part in enumerate(parts):
            at, count = part.find(needle), 0
            while at >= 0 and count < 256:
                found.append((index, at, part[at:at + len(needle) + 48].decode("latin-1")))
                at, count = part.find(needle, at + 1), count + 1
    # In file order, as a scan of the whole file meets them.
    found.sort(key=lambda item: (item[0], item[1]))
    return {
        "snippets": list(dict.fromkeys(snippet for _, _, snippet in found)),
        "sha256": hasher.hexdigest() if hasher is not None else None,
        "fatbins": fatbins,
    }


def fatbin_entries(handle, at, end):
    """The distinct lists of (kind, architecture) of the fatbins between two offsets of a
    CUDA library, walked from header to header as envlock's own walk does (capture/numerics/
    fatbin.rs): a fatbin at an 8-byte boundary, magic 0xBA55ED50, version 1, a 16-byte
    header, a body that fits; each entry's header (at least 32 bytes, at most 4096) and
    payload inside the body. Payloads are skipped, never read."""
    import struct

    lists = set()
    fatbins = 0
    while True:
        at = (at + 7) // 8 * 8
        if at + 16 > end:
            break
        handle.seek(at)
        window = handle.read(min(4096, end - at))
        found = -1
        start = 0
        while True:
            found = window.find(b"\x50\xed\x55\xba", start)
            if found < 0 or (at + found) % 8 == 0:
                break
            start = found + 1
        if found < 0:
            at = max(at, (at + len(window) - 3 + 7) // 8 * 8)
            if len(window) < 4096:
                break
            continue
        begin = at + found
        handle.seek(begin)
        header = handle.read(16)
        if len(header) < 16:
            break
        _, version, size, body = struct.unpack("<IHHQ", header)
        body_end = begin + 16 + body
        if version != 1 or size != 16 or body == 0 or body_end > end:
            at = begin + 8
            continue
        entries, entry_at, good = [], begin + 16, True
        while entry_at < body_end:
            handle.seek(entry_at)
            raw = handle.read(32)
            if entry_at + 32 > body_end or len(raw) < 32 or len(entries) >= 1024:
                good = False
                break
            kind, _, entry_size, payload = struct.unpack_from("<HHIQ", raw)
            (arch,) = struct.unpack_from("<I", raw, 28)
            step = entry_size + payload
            if entry_size < 32 or entry_size > 4096 or kind == 0 or arch > 10000 \
                    or entry_at + step > body_end:
                good = False
                break
            if kind in (1, 2):
                entries.append((kind, arch))
            entry_at += step
        if not good:
            at = begin + 8
            continue
        fatbins += 1
        entries = tuple(sorted(set(entries)))
        if len(lists) < 256 or entries in lists:
            lists.add(entries)
        at = body_end
    if fatbins == 0:
        return None
    return sorted([list(entries) for entries in lists])


def elf_sections(handle):
    """The sections of a 64-bit little-endian ELF by name: (type, offset, size, link)."""
    import struct

    handle.seek(0)
    header = handle.read(64)
    if header[:6] != b"\x7fELF\x02\x01":
        return None
    (table,) = struct.unpack_from("<Q", header, 0x28)
    entry, count, names_index = struct.unpack_from("<HHH", header, 0x3A)
    if entry < 64 or not 0 < count <= 4096 or names_index >= count:
        return None
    handle.seek(table)
    raw = handle.read(entry * count)
    # name, type, flags, address, offset, size, link
    rows = [struct.unpack_from("<IIQQQQI", raw, index * entry) for index in range(count)]
    handle.seek(rows[names_index][4])
    names = handle.read(min(rows[names_index][5], 1 << 20))
    sections = {}
    for row in rows:
        name = names[row[0]:names.find(b"\0", row[0])]
        sections.setdefault(name, (row[1], row[4], row[5], row[6]))
    sections[b""] = rows
    return sections


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
