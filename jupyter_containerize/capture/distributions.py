"""Installed distributions of the target: import → distribution, closure, exact pins.

Everything here works on the probe's JSON (see :mod:`.probe`), so the target
interpreter's own metadata is the truth, never a static name table.
"""

from __future__ import annotations

import re
import shutil
import ssl
import subprocess
import sys
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path
from typing import Any

from ..errors import CaptureError
from .probe import normalize
from .snapshot import PinnedDistribution

PYPI_SIMPLE = "https://pypi.org/simple"
# name, [extras], then anything up to the marker (version specifiers or "@ url"), "; marker"
_REQ_RE = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[([^\]]*)\])?[^;]*?(?:;(.*))?$")
_EXTRA_ONLY = re.compile(r"""^\(?\s*extra\s*==\s*['"]([^'"]+)['"]\s*\)?$""")
_EXTRA_NAMED = re.compile(r"""\bextra\s*==\s*['"]([^'"]+)['"]|['"]([^'"]+)['"]\s*==\s*extra\b""")
_MAX_REASONS = 3
# Extras for developing a library, not for using it: pytest, sphinx, linters… are no runtime need.
_DEV_EXTRA = re.compile(r"^(tests?|testing|dev|devel|develop|development|docs?|documentation|lint|linting|typing|"
                        r"types|mypy|style|format|bench|benchmarks?|cov|coverage|checks?|release|maintenance|ci|qa|"
                        r"build)([-_.].*)?$")
_CONDA_HINTS = ("feedstock_root", "conda-bld", "build_artifacts", "/croot/", "/opt/conda/conda-bld")
_SKIP_IN_FREEZE_ALL = frozenset({"pip", "jupyter-containerize"})
_TARGETS = {
    "linux/amd64": {"platform_machine": "x86_64"},
    "linux/arm64": {"platform_machine": "aarch64"},
    "linux/arm64/v8": {"platform_machine": "aarch64"},
    "linux/ppc64le": {"platform_machine": "ppc64le"},
    "linux/s390x": {"platform_machine": "s390x"},
}

# Import names whose distribution is spelled otherwise, for hints about modules the kernel lacks
# (when it has them, its metadata decides). The first name is the one to suggest.
_PIP_NAMES: dict[str, tuple[str, ...]] = {
    "sklearn": ("scikit-learn",),
    "cv2": ("opencv-python", "opencv-python-headless", "opencv-contrib-python", "opencv-contrib-python-headless"),
    "PIL": ("pillow",),
    "yaml": ("pyyaml",),
    "bs4": ("beautifulsoup4",),
    "skimage": ("scikit-image",),
    "dateutil": ("python-dateutil",),
    "Crypto": ("pycryptodome", "pycryptodomex"),
    "Cryptodome": ("pycryptodomex",),
    "dotenv": ("python-dotenv",),
    "jwt": ("pyjwt",),
    "serial": ("pyserial",),
    "usb": ("pyusb",),
    "magic": ("python-magic",),
    "docx": ("python-docx",),
    "pptx": ("python-pptx",),
    "fitz": ("pymupdf",),
    "attr": ("attrs",),
    "OpenSSL": ("pyopenssl",),
    "Bio": ("biopython",),
    "MySQLdb": ("mysqlclient",),
    "psycopg2": ("psycopg2-binary", "psycopg2"),
    "gi": ("pygobject",),
    "wx": ("wxpython",),
    "zmq": ("pyzmq",),
    "tensorflow_hub": ("tensorflow-hub",),
    "git": ("gitpython",),
    "umap": ("umap-learn",),
    "faiss": ("faiss-cpu", "faiss-gpu"),
    "mpl_toolkits": ("matplotlib",),
    "websocket": ("websocket-client",),
    "slugify": ("python-slugify",),
}


@dataclass(frozen=True)
class InstalledDistribution:
    """One distribution as the probe saw it."""

    name: str
    version: str
    requires: tuple[str, ...]
    path: Path  # the .dist-info folder
    installer: str = ""
    direct_url: Mapping[str, Any] | None = None
    top_level: tuple[str, ...] = ()
    namespaces: tuple[str, ...] = ()
    shared_objects: tuple[str, ...] = ()
    editable_paths: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        return normalize(self.name)


class Environment:
    """The target interpreter's installed distributions, indexed once."""

    def __init__(self, probe: Mapping[str, Any]) -> None:
        self.probe = probe
        self.dists: dict[str, InstalledDistribution] = {}
        self.top_level: dict[str, list[str]] = {}
        self.namespaces: dict[str, list[str]] = {}
        for d in probe["distributions"]:
            dist = InstalledDistribution(
                name=d["name"], version=d["version"], requires=tuple(d.get("requires", ())), path=Path(d["path"]),
                installer=d.get("installer", ""), direct_url=d.get("direct_url"),
                top_level=tuple(d.get("top_level", ())), namespaces=tuple(d.get("namespaces", ())),
                shared_objects=tuple(d.get("shared_objects", ())), editable_paths=tuple(d.get("editable_paths", ())),
            )
            if dist.key in self.dists:
                continue
            self.dists[dist.key] = dist
            for top in dist.top_level:
                self.top_level.setdefault(top, []).append(dist.key)
            for ns in dist.namespaces:
                self.namespaces.setdefault(ns, []).append(dist.key)
        self.stdlib = frozenset(probe.get("stdlib_module_names", ()))
        self._parsed: dict[str, list[tuple[str, frozenset[str], str | None, str]]] = {}

    @property
    def packages_distributions(self) -> dict[str, list[str]]:
        """Top-level import name → distribution names, like ``importlib.metadata``'s."""
        return {top: [self.dists[k].name for k in keys] for top, keys in self.top_level.items()}

    def get(self, name: str) -> InstalledDistribution | None:
        return self.dists.get(normalize(name))

    def resolve(self, module: str, candidates: Iterable[str] = ()) -> tuple[str, list[str]]:
        """``(module name that decided, distribution keys)`` for an imported module.

        Inside namespace packages the longest dotted prefix a distribution provides wins
        (``google.protobuf`` → protobuf); ``candidates`` are ``module.name`` guesses from
        ``from module import name``.
        """
        for name in (module, *candidates):
            parts = name.split(".")
            for i in range(len(parts), 1, -1):
                prefix = ".".join(parts[:i])
                keys = self.namespaces.get(prefix)
                if keys:
                    return prefix, list(keys)
        top = module.split(".", 1)[0]
        return top, list(self.top_level.get(top, ()))

    def distributions_of(self, module: str, candidates: Iterable[str] = ()) -> list[str]:
        """Keys of the distributions providing ``module`` (dotted names decide namespace packages)."""
        return self.resolve(module, candidates)[1]

    def requirements(self, key: str) -> list[tuple[str, frozenset[str], str | None, str]]:
        """Requires-Dist of one distribution as ``(key, extras, marker text, line)`` (invalid lines skipped)."""
        if key not in self._parsed:
            parsed = []
            for line in self.dists[key].requires:
                m = _REQ_RE.match(line)
                if m is None:
                    continue
                extras = frozenset(normalize(e.strip()) for e in (m.group(2) or "").split(",") if e.strip())
                parsed.append((normalize(m.group(1)), extras, (m.group(3) or "").strip() or None, line))
            self._parsed[key] = parsed
        return self._parsed[key]


def pip_names(module: str) -> tuple[str, ...]:
    """Likely distribution names of an import name the kernel lacks, the one to suggest first.

    A small table of well-known mismatches (``sklearn`` → scikit-learn, ``cv2`` →
    opencv-python…), else the import name itself.
    """
    top = module.partition(".")[0]
    return _PIP_NAMES.get(top) or (normalize(top),)


def target_marker_environment(probe: Mapping[str, Any], platform_target: str = "linux/amd64") -> dict[str, str]:
    """The probe's marker environment, moved to the image's OS and CPU (same Python)."""
    env = dict(probe["marker_environment"])
    if platform_target.startswith("linux/"):
        env.update({"sys_platform": "linux", "platform_system": "Linux", "os_name": "posix"})
        env.update(_TARGETS.get(platform_target, {}))
    return env


def parse_root(root: str) -> tuple[str, set[str]]:
    """A closure root (a requirement string or a bare name) as its distribution key and the extras it asks for."""
    from packaging.requirements import InvalidRequirement, Requirement
    from packaging.utils import canonicalize_name

    try:
        req = Requirement(root)
    except InvalidRequirement:
        return normalize(root), set()
    return canonicalize_name(req.name), {canonicalize_name(e) for e in req.extras}


def closure(
    env: Environment, roots: Iterable[str], marker_env: Mapping[str, str]
) -> tuple[dict[str, set[str]], list[str]]:
    """Distributions reachable from ``roots`` through Requires-Dist, markers evaluated for ``marker_env``.

    Args:
        env: the target's installed distributions.
        roots: requirement strings or names (``pkg[extra]`` follows that extra).
        marker_env: the target's PEP 508 environment.

    Returns:
        ``{key: extras requested}`` of every installed distribution in the closure, and the
        requirement strings that are needed but not installed.
    """
    found: dict[str, set[str]] = {}
    missing: list[str] = []
    queue: list[tuple[str, set[str], str]] = [(*parse_root(root), root) for root in roots]
    while queue:
        key, extras, text = queue.pop()
        if key not in env.dists:
            missing.append(text)
            continue
        seen = found.get(key)
        if seen is not None and extras <= seen:
            continue
        new_extras = extras - seen if seen is not None else extras
        found[key] = (seen or set()) | extras
        wanted = [""] + sorted(new_extras) if seen is None else sorted(new_extras)
        for dep, dep_extras, marker, line in env.requirements(key):
            if marker is not None and not _applies(marker, marker_env, wanted):
                continue
            queue.append((dep, set(dep_extras), line))
    return found, sorted(set(missing))


def optional_closure(
    env: Environment, found: Mapping[str, set[str]], marker_env: Mapping[str, str]
) -> tuple[dict[str, set[str]], dict[str, str], list[str]]:
    """Grow a closure by what its members can use: installed distributions they name under an extra.

    A library calls into optional dependencies the notebook never imports (networkx hands out
    scipy matrices, pandas writes Excel through openpyxl, mpmath uses gmpy2). Every *installed*
    distribution that a member names under a runtime extra whose marker holds for ``marker_env``
    joins with its own (required) closure; the additions' extras are not followed, and extras for
    developing a library (``test``, ``dev``, ``docs``…) are not runtime needs. Distributions the
    kernel does not have never join.

    Args:
        env: the target's installed distributions.
        found: a closure, as :func:`closure` returns it (not changed).
        marker_env: the target's PEP 508 environment.

    Returns:
        The grown closure, the reason each added key is there (``optional for pandas[excel],
        installed in the kernel``) and the requirement strings its additions need but the kernel lacks.
    """
    grown = {key: set(extras) for key, extras in found.items()}
    named: dict[str, set[str]] = {}
    for key in sorted(found):
        for dep, _extras, marker, _line in env.requirements(key):
            if dep in found or dep not in env.dists or marker is None:
                continue
            for extra in _extras_enabling(marker, marker_env):
                named.setdefault(dep, set()).add(f"{env.dists[key].name}[{extra}]")
    why = {dep: "optional for " + _listing(sorted(users)) for dep, users in named.items()}
    reasons = {dep: f"{why[dep]}, installed in the kernel" for dep in named}
    missing: list[str] = []
    for dep in sorted(named):
        added, absent = closure(env, [env.dists[dep].name], marker_env)
        missing += absent
        for key in sorted(added):
            if key not in grown:
                grown[key] = added[key]
                reasons.setdefault(key, f"needed by {env.dists[dep].name}, {why[dep]}; installed in the kernel")
    return grown, reasons, sorted(set(missing))


def _extras_enabling(marker: str, marker_env: Mapping[str, str]) -> list[str]:
    """The runtime extras a marker names (``extra == "excel"``) for which it holds on the target."""
    names = {normalize(a or b) for a, b in _EXTRA_NAMED.findall(marker)}
    return [name for name in sorted(names) if not _DEV_EXTRA.match(name) and _applies(marker, marker_env, [name])]


def _listing(items: list[str]) -> str:
    if len(items) <= _MAX_REASONS:
        return ", ".join(items)
    return f"{', '.join(items[:_MAX_REASONS])} and {len(items) - _MAX_REASONS} more"


@lru_cache(maxsize=4096)
def _marker(text: str) -> Any:
    from packaging.markers import InvalidMarker, Marker

    try:
        return Marker(text)
    except InvalidMarker:
        return None


def marker_holds(marker: str | None, marker_env: Mapping[str, str]) -> bool:
    """Whether a Requires-Dist marker holds for ``marker_env``, with no extra or with an extra it names."""
    if marker is None:
        return True
    extras = [""] + sorted({normalize(a or b) for a, b in _EXTRA_NAMED.findall(marker)})
    return _applies(marker, marker_env, extras)


def _applies(marker: str, marker_env: Mapping[str, str], extras: list[str]) -> bool:
    only_extra = _EXTRA_ONLY.match(marker)
    if only_extra:  # the common case, decided without parsing
        return normalize(only_extra.group(1)) in extras
    parsed = _marker(marker)
    return parsed is not None and any(parsed.evaluate({**marker_env, "extra": e}) for e in extras)


def _file_path(url: str) -> Path | None:
    parsed = urllib.parse.urlparse(url)
    if parsed.scheme != "file":
        return None
    return Path(urllib.request.url2pathname(parsed.path))


def _strip_credentials(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    if parts.username in (None, "git") or "@" not in parts.netloc:
        return url
    return urllib.parse.urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]))


def _is_conda_record(dist: InstalledDistribution, url: str) -> bool:
    return dist.installer.lower() == "conda" or any(h in url for h in _CONDA_HINTS)


def pin_distribution(dist: InstalledDistribution, wheel_dir: Path | None = None) -> tuple[PinnedDistribution, str]:
    """The exact lock line of one installed distribution, and a warning (or ``""``).

    Args:
        dist: the installed distribution.
        wheel_dir: where to build wheels of local projects now; ``None`` defers the build to
            :func:`build_local_wheel` (the pin then has ``project_path`` and no ``wheel_path``).

    Raises:
        CaptureError: a local project cannot be found or built.
    """
    plain = PinnedDistribution(dist.name, dist.version, f"{dist.name}=={dist.version}")
    info = dist.direct_url
    if not info or not isinstance(info.get("url"), str):
        return plain, ""
    url: str = info["url"]
    vcs = info.get("vcs_info")
    if isinstance(vcs, dict):
        commit = vcs.get("commit_id") or vcs.get("requested_revision")
        clean = _strip_credentials(url)
        req = f"{dist.name} @ {vcs.get('vcs', 'git')}+{clean}" + (f"@{commit}" if commit else "")
        if info.get("subdirectory"):
            req += f"#subdirectory={info['subdirectory']}"
        warning = "" if clean == url else f"{dist.name}: credentials removed from its VCS URL."
        return replace(plain, requirement=req, source="vcs"), warning
    path = _file_path(url)
    if path is None:  # an archive from a URL
        return replace(plain, requirement=f"{dist.name} @ {_strip_credentials(url)}", source="url"), ""
    editable = bool((info.get("dir_info") or {}).get("editable"))
    if not editable and (_is_conda_record(dist, url) or not path.exists()):
        warning = "" if _is_conda_record(dist, url) else (
            f"{dist.name} was installed from {path}, which no longer exists; pinned as {dist.name}=={dist.version}.")
        return plain, warning
    if not path.exists():
        raise CaptureError(
            f"{dist.name} is installed in editable mode from {path}, which no longer exists.",
            "Reinstall it (`pip install -e PATH`) or uninstall it, then capture again.",
        )
    if path.is_dir() and not any((path / f).is_file() for f in ("pyproject.toml", "setup.py", "setup.cfg")):
        raise CaptureError(
            f"{dist.name} is installed from {path}, which has no pyproject.toml or setup.py to build a wheel from.",
            "Install it from an index or a buildable project, then capture again.",
        )
    pending = replace(plain, source="local-wheel", project_path=path)
    if wheel_dir is None:
        return pending, ""
    return build_local_wheel(pending, wheel_dir), ""


def find_uv() -> str | None:
    """The uv executable: on PATH, else the one the ``uv`` package ships; ``None`` if neither."""
    found = shutil.which("uv")
    if found:
        return found
    try:
        from uv import find_uv_bin

        return str(find_uv_bin())
    except (ImportError, FileNotFoundError):
        return None


def build_local_wheel(dist: PinnedDistribution, dest: Path, python: str | None = None) -> PinnedDistribution:
    """Build (or copy) the wheel of a local project into ``dest``; return the completed pin.

    The pin's requirement becomes ``name @ file:///wheels/<wheel file>``.

    Raises:
        CaptureError: the project cannot be built; the message names it.
    """
    if dist.wheel_path is not None or dist.project_path is None:
        return dist
    project = dist.project_path
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    if project.is_file() and project.suffix == ".whl":
        wheel = dest / project.name
        shutil.copyfile(project, wheel)
    else:
        with tempfile.TemporaryDirectory(prefix="jc-wheel-") as tmp:
            uv = find_uv()
            cmd = ([uv, "build", "--wheel", "--out-dir", tmp, str(project)] if uv else
                   [python or sys.executable, "-m", "pip", "wheel", "--no-deps", "-w", tmp, str(project)])
            try:
                proc = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=900)
            except (OSError, subprocess.TimeoutExpired) as exc:
                raise CaptureError(f"Cannot build a wheel of {dist.name} from {project}: {exc}.") from None
            wheels = sorted(Path(tmp).glob("*.whl"))
            if proc.returncode != 0 or not wheels:
                tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
                raise CaptureError(
                    f"Cannot build a wheel of the local project {dist.name} from {project} ({tail}).",
                    "Fix the project's build (try `uv build --wheel` there) or install it from an index.",
                )
            wheel = dest / wheels[-1].name
            shutil.move(str(wheels[-1]), wheel)
    return replace(dist, wheel_path=wheel, requirement=f"{dist.name} @ file:///wheels/{wheel.name}")


def pin_closure(
    names: Iterable[str],
    python: str | None = None,
    *,
    wheel_dir: Path | None = None,
    platform_target: str = "linux/amd64",
) -> list[PinnedDistribution]:
    """Exact pins of the named distributions and their whole dependency closure, sorted by name.

    Args:
        names: distribution names or requirement strings (``pkg[extra]``).
        python: interpreter whose installed metadata counts; ``None``: this process.
        wheel_dir: where to build wheels of local projects (``None``: deferred).
        platform_target: OS/CPU of the image, for environment markers.

    Raises:
        CaptureError: a named distribution is not installed, or a local project can't be built.
        InterpreterError: ``python`` cannot be run.
    """
    from .interpreter import run_probe

    probe = run_probe(python)
    env = Environment(probe)
    names = list(names)
    found, _missing = closure(env, names, target_marker_environment(probe, platform_target))
    absent = [n for n in _missing if n in names]
    if absent:
        raise CaptureError(f"Not installed in {probe['executable']}: {', '.join(absent)}.",
                           "Install them there, or remove them from the list.")
    return sorted((pin_distribution(env.dists[k], wheel_dir)[0] for k in found), key=lambda p: normalize(p.name))


def _index_has(name: str, version: str, index_url: str, timeout: float, context: ssl.SSLContext) -> bool | None:
    url = f"{index_url.rstrip('/')}/{normalize(name)}/"
    request = urllib.request.Request(url, headers={"Accept": "application/vnd.pypi.simple.v1+json, text/html;q=0.1"})
    try:
        with urllib.request.urlopen(request, timeout=timeout, context=context) as resp:
            body = resp.read().decode("utf-8", errors="replace")
    except urllib.error.HTTPError as exc:
        return False if exc.code == 404 else None
    except (urllib.error.URLError, OSError, ValueError):
        return None
    spellings = {name, normalize(name), normalize(name).replace("-", "_")}
    alternatives = "|".join(re.escape(n) for n in sorted(spellings))
    pattern = rf"(?i)(?:^|[/\"'>])(?:{alternatives})-{re.escape(version)}(?:-|\.tar\.gz|\.zip|\.tar\.bz2)"
    return re.search(pattern, body) is not None


def check_index_availability(
    pins: Iterable[PinnedDistribution], index_url: str = PYPI_SIMPLE, *, timeout: float = 5.0,
    cert: Path | None = None,
) -> list[str]:
    """``name==version`` of each index pin whose version the index does not have.

    Uses the index's simple API (PEP 691 JSON or PEP 503 HTML), which every index and proxy serves.

    Raises:
        CaptureError: the index could not be reached for any package.
    """
    todo = [p for p in pins if p.source == "index"]
    context = ssl.create_default_context(cafile=str(cert) if cert else None)
    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(lambda p: _index_has(p.name, p.version, index_url, timeout, context), todo))
    if todo and all(a is None for a in answers):
        raise CaptureError(f"Cannot reach the package index {_strip_credentials(index_url)} to check versions.")
    return [f"{p.name}=={p.version}" for p, ok in zip(todo, answers, strict=True) if ok is False]


def all_distributions(env: Environment) -> list[str]:
    """Names of every installed distribution, for ``--freeze all`` (the installer itself left out)."""
    return [d.name for k, d in sorted(env.dists.items()) if k not in _SKIP_IN_FREEZE_ALL]
