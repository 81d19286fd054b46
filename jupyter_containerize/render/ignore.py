"""What may enter a build context: the copy filter and the ``.dockerignore``.

Both are used, for different readers. Render copies only what the image needs into a
fresh folder, filtering local code through :func:`keep_file` (no VCS folders, caches,
checkpoints, secrets, data or model files, nothing over 50 MB) — so the context the
engine receives is small and clean by construction. The ``.dockerignore`` ships in the
same folder for whoever builds it by hand or drops files into it: an allow-list
(``*`` then ``!`` for each thing the Dockerfile copies) followed by the same deny-list
for the allowed folders, and finally ``!`` exceptions for ``--include`` paths, which
win over everything (Docker applies the last matching pattern).
"""

from __future__ import annotations

import fnmatch
import re
from pathlib import PurePosixPath

MAX_FILE_BYTES = 50 * 1024 * 1024

ALLOWED_TOP = ("Dockerfile", "requirements.lock", "kernel.lock", "runner.lock", "build", "jc", "work", "wheels", "tools",
               "certs/ca.crt")

SKIP_DIRS = frozenset({
    ".git", ".hg", ".svn", "__pycache__", ".ipynb_checkpoints", ".mypy_cache", ".pytest_cache",
    ".ruff_cache", ".tox", ".nox", ".venv", "venv", "node_modules", ".ssh", ".aws", ".gnupg",
    ".cache", ".jc-jobs",
})
SECRET_PATTERNS = (".env", ".env.*", "*.pem", "*.key", "id_rsa*", "id_ed25519*", ".netrc", ".pypirc",
                   "credentials*.json", "*.p12", "*.pfx")
CACHE_PATTERNS = ("*.pyc", "*.pyo", ".DS_Store")
DATA_EXTENSIONS = ("csv", "tsv", "parquet", "h5", "hdf5", "pt", "pth", "safetensors", "onnx", "pkl", "pickle",
                   "npy", "npz", "ckpt", "joblib", "arrow", "feather", "tfrecord", "zip", "tar", "tar.gz", "tgz",
                   "tar.bz2", "tar.xz", "gz", "bz2", "xz", "7z", "h5ad", "bin", "db", "sqlite")


def _matches(name: str, patterns: tuple[str, ...]) -> bool:
    return any(fnmatch.fnmatchcase(name, p) for p in patterns)


def is_data_file(name: str) -> bool:
    """Data and model files are mounted as volumes, not baked into images."""
    lower = name.lower()
    return any(lower.endswith("." + ext) for ext in DATA_EXTENSIONS)


def skip_dir(name: str) -> bool:
    """Folders never copied from local code (VCS, caches, virtualenvs, checkpoints)."""
    return name in SKIP_DIRS or name.endswith((".jc-jobs", ".egg-info"))


def keep_file(name: str, size: int) -> str | None:
    """``None`` to copy a file of local code, else why it is left out."""
    if _matches(name, SECRET_PATTERNS):
        return "looks like a credential"
    if _matches(name, CACHE_PATTERNS):
        return "cache"
    if is_data_file(name):
        return "data or model file (mount it with -v, or --include it)"
    if size > MAX_FILE_BYTES:
        return "larger than 50 MB (--include it to keep it)"
    return None


_GLOB_SPECIAL = re.compile(r"([*?\[\]\\])")


def escape_pattern(path: str) -> str:
    """A ``.dockerignore`` pattern that matches ``path`` literally."""
    if "\n" in path or "\r" in path:
        raise ValueError("a path with a line break cannot be named in .dockerignore")
    return _GLOB_SPECIAL.sub(r"\\\1", path)


def dockerignore(included: tuple[str, ...]) -> str:
    """The ``.dockerignore`` text; ``included`` are context paths (``work/…``) given with --include."""
    lines = [
        "# .dockerignore written by jupyter-containerize.",
        "# Allow only what the Dockerfile copies; data, secrets and caches stay out",
        "# (mount data with -v; add a file on purpose with --include PATH).",
        "*",
    ]
    lines += [f"!{p}" for p in ALLOWED_TOP]
    lines += [f"**/{d}" for d in sorted(SKIP_DIRS)]
    lines += ["**/*.egg-info"]
    lines += [f"**/{p}" for p in SECRET_PATTERNS + CACHE_PATTERNS]
    lines += [f"**/*.{ext}" for ext in DATA_EXTENSIONS]
    lines += [f"!{escape_pattern(p)}" for p in sorted(included)]
    return "\n".join(lines) + "\n"


def posix(path: PurePosixPath | str) -> str:
    """A context-relative path as text with forward slashes."""
    return str(PurePosixPath(path))
