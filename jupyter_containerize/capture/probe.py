"""Stdlib-only probe of a Python environment; runs inside the kernel's interpreter.

Run as a script (``python - < probe.py`` or ``python probe.py``) it prints one JSON
document on stdout; imported, :func:`collect` returns the same dictionary. It must work
on Python 3.10+ with nothing but the standard library, because the kernel's
interpreter need not have jupyter_containerize installed.

Every installed distribution is read once: the header of ``METADATA`` (name, version,
Requires-Dist, Provides-Extra), ``direct_url.json``, ``INSTALLER``, ``top_level.txt``
and ``RECORD``. Of ``RECORD`` only what capture needs leaves the probe: importable
top-level names, dotted prefixes inside namespace packages (``google.protobuf``),
shared objects (for ELF ``NEEDED``) and, for editable installs, the project paths.
"""

from __future__ import annotations

import configparser
import json
import os
import platform
import re
import sys
from collections.abc import Mapping
from typing import Any

PROBE_VERSION = 1

_PIP_KEYS = ("index-url", "extra-index-url", "trusted-host", "cert", "find-links", "no-index", "client-cert",
             "cache-dir")
_NAME_RE = re.compile(r"[-_.]+")
_SO_RE = re.compile(r"\.(?:so(?:\.[0-9][^/]*)?|pyd|dylib)$")
_MAPPING_RE = re.compile(r"^MAPPING\s*(?::[^=\n]*)?=\s*(\{.*?\})\s*$", re.MULTILINE | re.DOTALL)


def normalize(name: str) -> str:
    """PEP 503 normalized project name."""
    return _NAME_RE.sub("-", name).lower()


def _read(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read()
    except OSError:
        return None


def _headers(text: str) -> dict[str, list[str]]:
    """Parse the RFC 822 header block of METADATA / PKG-INFO (only the keys we need)."""
    wanted = {"name", "version", "requires-dist", "provides-extra"}
    out: dict[str, list[str]] = {}
    end = text.find("\n\n")
    for line in (text if end < 0 else text[:end]).splitlines():
        if not line or line[0] in " \t":
            continue
        key, sep, value = line.partition(":")
        key = key.strip().lower()
        if sep and key in wanted:
            out.setdefault(key, []).append(value.strip())
    return out


def _egg_requires(text: str | None) -> list[str]:
    """Convert an egg-info ``requires.txt`` into Requires-Dist strings."""
    reqs: list[str] = []
    marker = ""
    for raw in (text or "").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("[") and line.endswith("]"):
            extra, _, cond = line[1:-1].partition(":")
            parts = [f"({cond})"] if cond else []
            if extra:
                parts.append(f'extra == "{extra}"')
            marker = " and ".join(parts)
            continue
        reqs.append(f"{line}; {marker}" if marker else line)
    return reqs


def _record_paths(record: str) -> list[str]:
    """The path column of RECORD (paths containing commas are CSV-quoted)."""
    if '"' not in record:
        return [line.split(",", 1)[0] for line in record.splitlines()]
    import csv  # rare: only quoted paths need the csv module

    return [row[0] for row in csv.reader(record.splitlines()) if row]


def _namespace_prefixes(paths: list[str], package_dirs: set[str], namespace_tops: set[str]) -> list[str]:
    """Dotted prefixes of regular packages or modules inside namespace top-levels."""
    out: set[str] = set()
    prefixes = tuple(t + "/" for t in namespace_tops)
    decided: set[str] = set()  # folders already resolved to a regular package
    for path in paths:
        if not path.startswith(prefixes) or not path.endswith((".py", ".so", ".pyd")):
            continue
        folder, _, leaf = path.rpartition("/")
        if folder in decided or leaf.startswith("__init__."):
            continue
        parts = path.split("/")
        # walk down until a regular package (has __init__.py) or the module itself
        for i in range(2, len(parts) + 1):
            if i == len(parts):
                out.add(".".join(parts[:-1] + [leaf.split(".", 1)[0]]))
            elif "/".join(parts[:i]) in package_dirs:
                out.add(".".join(parts[:i]))
                decided.add(folder)
                break
    return sorted(p for p in out if all(s.isidentifier() for s in p.split(".")))


def _editable_paths(base: str, files: list[str]) -> tuple[list[str], dict[str, str]]:
    """Project directories added by an editable install's ``.pth`` and finder files."""
    paths: list[str] = []
    mapping: dict[str, str] = {}
    for pth in (f for f in files if f.endswith(".pth") and "/" not in f):
        for line in (_read(os.path.join(base, pth)) or "").splitlines():
            line = line.strip()
            if line and not line.startswith(("#", "import ")) and os.path.isdir(line):
                paths.append(os.path.abspath(line))
    for finder in (f for f in files if f.startswith("__editable___") and f.endswith("_finder.py")):
        m = _MAPPING_RE.search(_read(os.path.join(base, finder)) or "")
        if m:
            import ast  # only editable setuptools installs need it

            try:
                value = ast.literal_eval(m.group(1))
            except (ValueError, SyntaxError):
                continue
            if isinstance(value, dict):
                mapping.update({str(k): str(v) for k, v in value.items()})
    return paths, mapping


def _tops_in_dir(path: str) -> list[str]:
    tops = []
    try:
        entries = list(os.scandir(path))
    except OSError:
        return []
    for e in entries:
        name = e.name
        if e.is_dir() and name.isidentifier() and not name.startswith(("test", "_")):
            if any(f.endswith(".py") for f in os.listdir(e.path)):
                tops.append(name)
        elif name.endswith(".py") and name[:-3].isidentifier() and name not in ("setup.py", "conftest.py"):
            tops.append(name[:-3])
    return tops


def _distribution(base: str, entry: str) -> dict[str, Any] | None:
    path = os.path.join(base, entry)
    is_egg = entry.endswith(".egg-info")
    meta = _read(os.path.join(path, "PKG-INFO" if is_egg else "METADATA"))
    if meta is None:
        return None
    h = _headers(meta)
    if not h.get("name") or not h.get("version"):
        return None
    direct_url: Any = None
    raw_direct = _read(os.path.join(path, "direct_url.json"))
    if raw_direct:
        try:
            direct_url = json.loads(raw_direct)
        except ValueError:
            direct_url = None
    record = _read(os.path.join(path, "installed-files.txt" if is_egg else "RECORD")) or ""
    if is_egg:  # installed-files.txt paths are relative to the egg-info folder
        files = [os.path.normpath(os.path.join(entry, p)) for p in record.splitlines() if p]
    else:
        files = _record_paths(record)
    package_dirs = {f[:-12] for f in files if f.endswith("/__init__.py")}
    top_dirs = {f.split("/", 1)[0] for f in files if "/" in f}
    tops = top_dirs | {f.split(".", 1)[0] for f in files if "/" not in f and f.endswith((".py", ".so", ".pyd"))}
    top_level_txt = _read(os.path.join(path, "top_level.txt"))
    if top_level_txt:
        tops |= {t.strip().split("/")[0] for t in top_level_txt.splitlines() if t.strip()}
    tops = {t for t in tops if t.isidentifier() and t != "__pycache__"}
    namespace_tops = {t for t in top_dirs if t not in package_dirs and t.isidentifier() and t != "__pycache__"}
    editable: list[str] = []
    mapping: dict[str, str] = {}
    if any(f.endswith((".pth", "_finder.py")) for f in files if "/" not in f):
        editable, mapping = _editable_paths(base, files)
        tops |= set(mapping)
        for p in editable:
            tops |= set(_tops_in_dir(p))
    shared = [f for f in files if ".so" in f or f.endswith((".pyd", ".dylib"))]
    requires = h.get("requires-dist", [])
    if is_egg:
        requires = _egg_requires(_read(os.path.join(path, "requires.txt")))
    return {
        "name": h["name"][0],
        "version": h["version"][0],
        "requires": requires,
        "provides_extra": h.get("provides-extra", []),
        "path": path,
        "installer": (_read(os.path.join(path, "INSTALLER")) or "").strip(),
        "direct_url": direct_url,
        "top_level": sorted(tops),
        "namespaces": _namespace_prefixes(files, package_dirs, namespace_tops) if namespace_tops else [],
        "shared_objects": sorted({os.path.normpath(os.path.join(base, f)) for f in shared if _SO_RE.search(f)}),
        "editable_paths": sorted(set(editable) | {os.path.dirname(v) for v in mapping.values()}),
    }


def distributions(paths: list[str] | None = None) -> list[dict[str, Any]]:
    """Every distribution visible on ``paths`` (default ``sys.path``), first one wins."""
    seen: set[str] = set()
    out: list[dict[str, Any]] = []
    for base in sys.path if paths is None else paths:
        base = os.path.abspath(base or ".")
        try:
            entries = sorted(e.name for e in os.scandir(base) if e.name.endswith((".dist-info", ".egg-info")))
        except OSError:
            continue
        for entry in entries:
            key = normalize(entry.rsplit(".", 1)[0].split("-", 1)[0])
            if key in seen:
                continue
            dist = _distribution(base, entry)
            if dist is None:
                continue
            key = normalize(dist["name"])
            if key not in seen:
                seen.add(key)
                out.append(dist)
    return out


def marker_environment() -> dict[str, str]:
    """The PEP 508 marker environment of this interpreter (as ``packaging`` builds it)."""
    impl = sys.implementation
    iv = impl.version
    impl_version = f"{iv.major}.{iv.minor}.{iv.micro}"
    if iv.releaselevel != "final":
        impl_version += iv.releaselevel[0] + str(iv.serial)
    return {
        "implementation_name": impl.name,
        "implementation_version": impl_version,
        "os_name": os.name,
        "platform_machine": platform.machine(),
        "platform_release": platform.release(),
        "platform_system": platform.system(),
        "platform_version": platform.version(),
        "python_full_version": platform.python_version(),
        "platform_python_implementation": platform.python_implementation(),
        "python_version": ".".join(platform.python_version_tuple()[:2]),
        "sys_platform": sys.platform,
    }


def pip_config_files(environ: Mapping[str, str] | None = None) -> list[str]:
    """pip's configuration files in pip's load order (global, user, site, PIP_CONFIG_FILE)."""
    env = os.environ if environ is None else environ
    env_file = env.get("PIP_CONFIG_FILE")
    if env_file == os.devnull:
        return []
    home = os.path.expanduser("~")
    files: list[str] = []
    if sys.platform == "win32":
        program_data = env.get("ALLUSERSPROFILE", "C:\\ProgramData")
        files.append(os.path.join(program_data, "pip", "pip.ini"))
        user = [os.path.join(home, "pip", "pip.ini"), os.path.join(env.get("APPDATA", home), "pip", "pip.ini")]
        site_name = "pip.ini"
    elif sys.platform == "darwin":
        files.append("/Library/Application Support/pip/pip.conf")
        mac_user = os.path.join(home, "Library", "Application Support", "pip")
        user_dir = mac_user if os.path.isdir(mac_user) else os.path.join(home, ".config", "pip")
        user = [os.path.join(home, ".pip", "pip.conf"), os.path.join(user_dir, "pip.conf")]
        site_name = "pip.conf"
    else:
        xdg_dirs = env.get("XDG_CONFIG_DIRS") or "/etc/xdg"
        files += [os.path.join(d, "pip", "pip.conf") for d in xdg_dirs.split(os.pathsep) if d]
        files.append("/etc/pip.conf")
        xdg_home = env.get("XDG_CONFIG_HOME") or os.path.join(home, ".config")
        user = [os.path.join(home, ".pip", "pip.conf"), os.path.join(xdg_home, "pip", "pip.conf")]
        site_name = "pip.conf"
    if not (env_file and os.path.exists(env_file)):
        files += user
    files.append(os.path.join(sys.prefix, site_name))
    if env_file:
        files.append(env_file)
    return files


def pip_config(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """pip's effective index / TLS settings: config files ([global], then [install]), then PIP_* env."""
    env = os.environ if environ is None else environ
    values: dict[str, str] = {}
    origins: dict[str, str] = {}
    read: list[str] = []
    for path in pip_config_files(env):
        if not os.path.isfile(path):
            continue
        parser = configparser.RawConfigParser()
        try:
            parser.read(path, encoding="utf-8")
        except (configparser.Error, OSError, UnicodeDecodeError):
            continue
        read.append(path)
        for section in ("global", "install"):
            if parser.has_section(section):
                for key, value in parser.items(section):
                    key = key.replace("_", "-")
                    if key in _PIP_KEYS:
                        values[key] = value
                        origins[key] = path
    for key in _PIP_KEYS:
        env_key = "PIP_" + key.upper().replace("-", "_")
        if env.get(env_key):
            values[key] = env[env_key]
            origins[key] = "env:" + env_key
    netrc = env.get("NETRC") or os.path.join(os.path.expanduser("~"), "_netrc" if os.name == "nt" else ".netrc")
    return {
        "values": values,
        "origins": origins,
        "files": read,
        "netrc": netrc if os.path.isfile(netrc) else None,
        "ssl_cert_file": env.get("SSL_CERT_FILE") or env.get("REQUESTS_CA_BUNDLE") or None,
    }


def cache_dirs(pip_values: Mapping[str, str], environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """pip's and uv's cache folders for this user, by their documented rules (they may not exist).

    Capture looks there for wheel files of what the kernel installed (see ``capture.wheels``).
    """
    env = os.environ if environ is None else environ
    home = os.path.expanduser("~")
    if sys.platform == "win32":
        local = env.get("LOCALAPPDATA") or os.path.join(home, "AppData", "Local")
        pip_default, uv_default = os.path.join(local, "pip", "Cache"), os.path.join(local, "uv", "cache")
    else:
        xdg = env.get("XDG_CACHE_HOME") or os.path.join(home, ".cache")
        mac = os.path.join(home, "Library", "Caches", "pip")
        pip_default = mac if sys.platform == "darwin" else os.path.join(xdg, "pip")
        uv_default = os.path.join(xdg, "uv")
    return {"pip": pip_values.get("cache-dir") or pip_default, "uv": env.get("UV_CACHE_DIR") or uv_default}


def collect(paths: list[str] | None = None) -> dict[str, Any]:
    """Everything capture needs to know about this interpreter, as JSON-able values."""
    names = getattr(sys, "stdlib_module_names", None)
    config = pip_config()
    return {
        "probe_version": PROBE_VERSION,
        "python_version": platform.python_version(),
        "executable": sys.executable,
        "prefix": sys.prefix,
        "platform": sys.platform,
        "machine": platform.machine(),
        "marker_environment": marker_environment(),
        "stdlib_module_names": sorted(set(names or ()) | set(sys.builtin_module_names)),
        "distributions": distributions(paths),
        "pip_config": config,
        "caches": cache_dirs(config["values"]),
    }


def main() -> int:
    if sys.version_info < (3, 10):  # noqa: UP036 - the probe runs in any interpreter
        json.dump({"error": f"Python {platform.python_version()} is too old; 3.10+ is needed"}, sys.stdout)
        return 3
    json.dump(collect(), sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
