# envlock's interpreter probe. Run as `python -c <this>`; prints one JSON object on stdout.
# It only asks the interpreter about itself: no network, no imports beyond the standard
# library, no writes. It must run on any CPython/PyPy 3.6+ (images carry old interpreters).
# The answer's keys are read by src/python/probe.rs; bump "probe" when they change.
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
    sys.stdout.write(json.dumps(answer))


main()
