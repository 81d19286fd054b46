"""Snapshot + JobSpec → Dockerfile text (deterministic), in one of two layouts.

On an engine with BuildKit the layout is :func:`_buildkit`'s: one final stage that
installs the venvs with uv, the locks and uv's cache mounted (no ``# syntax`` line: the
engine's built-in frontend reads ``RUN --mount``). Otherwise, and where BuildKit
without a client session cannot do the job (credentials, git, CUDA bases), the
classic layout builds on Docker 20.10's classic builder: no ``RUN --mount``, no
heredocs. Two stages:

* **builder** (the same base, or ``python:X.Y.Z-slim-bookworm`` for CUDA bases):
  uv pinned to the host's version, the pip configuration (credential-free values
  as ``ENV``, credentialed index URLs as ``ARG`` whose values only the build args
  carry; extra indexes only on the one command that installs the lock), the user's
  venv ``/opt/venv`` from ``requirements.lock`` and the runner's venv
  ``/opt/jc-runner`` from ``runner.lock``. Nothing of this stage reaches the
  final image except the two venvs, so neither caches nor secrets do.
* **final**: OS packages first, the non-root user, the venvs, the runner, then the
  notebook and local code last (a notebook-only edit rebuilds only those layers),
  exec-form entrypoint, labels last.

``uv pip install --no-deps``: the lock *is* the closure read from the kernel's real
interpreter, so installing it without resolving keeps the environment exactly the
lock (no package added or moved), and environments whose metadata conflicts but work
(common with conda) still build. The kernel's ipykernel, when the lock lacks it, and
the runner are installed *with* dependency resolution, the former constrained by the
user's lock so no user pin moves.

Indexes: the kernel's main index serves every install (uv, the runner, the lock); its
extra indexes (PyPI's mirror of ``+cpu`` builds, a team's index) only the lock's install,
so the runner's tools never come from them. When every pin is a wheel in the context
(always with ``--wheels-from-kernel``) the lock installs with ``--no-index`` and the
kernel's index settings are not written at all: the runner and uv come from the default
index, and no credential is passed.

``UV_COMPILE_BYTECODE=1``: jobs run with a read-only root and
``PYTHONDONTWRITEBYTECODE=1``, so bytecode can never be cached at run time; compiling
once at build saves every job from recompiling IPython, numpy, pandas… on each start.
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
import posixpath
import re
from dataclasses import dataclass

from ..capture.snapshot import EnvironmentSnapshot
from ..errors import OptionError
from ..jobspec import OUTPUT_DIR_IN_CONTAINER, WORK_DIR_IN_CONTAINER, JobSpec
from . import locks
from .. import validators
from .quoting import comment_text, json_array, label_text, quoted, validate_arg_name, validate_debian_package

VENV = "/opt/venv"
RUNNER_VENV = "/opt/jc-runner"
JC_DIR = "/opt/jc"
BUILD_DIR = "/opt/jc-build"  # builder stage only
UV_DIR = f"{BUILD_DIR}/uv"  # the installer, builder stage only
MANAGED_PYTHON_DIR = "/opt/python"  # CUDA bases: uv-managed CPython, copied to the final stage
FALLBACK_UID = 1000
LABEL_PREFIX = "org.jupyter-containerize"
DEFAULT_UV_VERSION = "0.13.9"

# Index URLs are written into ENV and double-quoted shell words: allow only URL characters
# that are inert there (no quotes, backslash, backtick, ``$`` or whitespace).
_SAFE_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://[A-Za-z0-9._~:/?#\[\]@!&'()*+,;=%-]+$")
_SAFE_HOST = re.compile(r"^[A-Za-z0-9.-]+(?::[0-9]+)?$")
_MODULE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")
BK_DIR = "/tmp/jc-build"  # BuildKit mount points; /tmp is a tmpfs in the job, so no stub shows
KERNEL_MODULES = (":kernel",)  # precompile.py initializes a kernel: what every job's kernel imports
RUNNER_MODULES = ("nbclient", "nbformat", "jupyter_client.manager")


@dataclass(frozen=True)
class Plan:
    """Every decision that shapes the Dockerfile, already validated."""

    base_image: str
    builder_image: str
    python_version: str
    python_kind: str  # "official" (/usr/local/bin/python3), "managed" (uv python), "path" (python3 on PATH)
    uid: int
    notebook_name: str
    notebook_folder: str  # the notebook's folder under /work ("" or e.g. "notebooks", see capture.references)
    requirements_lock: str
    kernel_lock: str | None
    has_wheels: bool
    has_cert: bool
    needs_git: bool
    system_packages: tuple[str, ...]
    index_url: str | None  # credential-free value for ENV
    secret_index_arg: str | None  # ARG holding the credentialed index URL
    extra_index_urls: tuple[str, ...]  # in order; "${ARG}" for credentialed ones
    secret_args: tuple[str, ...]
    trusted_hosts: tuple[str, ...]
    cuda_version: str | None
    uv_version: str
    tool_version: str
    buildkit: bool = False  # one stage, package caches on BuildKit cache mounts (see _buildkit)
    precompile: tuple[str, ...] = ()  # modules whose bytecode the BuildKit image keeps
    no_index: bool = False  # every pin is a wheel of the context: the lock installs without an index
    carry_uv: bool = False  # no index at all: uv is this machine's (tools/uv), the runner the kernel's wheels

    def lock_indexes(self) -> tuple[str, ...]:
        """Indexes the lock's install reaches (credential-free, ``${ARG}`` for credentialed ones).

        None when every pin is a wheel of the context; else the main index (``""`` for the
        installer's default) and the extra ones.
        """
        if self.no_index:
            return ()
        main = f"${{{self.secret_index_arg}}}" if self.secret_index_arg else (self.index_url or "")
        return (main, *self.extra_index_urls)


def default_base_image(python_version: str) -> str:
    """The official slim image for an exact Python version."""
    return f"python:{validators.python_version(python_version)}-slim-bookworm"


def container_uid(spec: JobSpec | None) -> int:
    """The container user's UID: the spec's, else the host user's, never 0."""
    uid = spec.build.uid if spec is not None and spec.build.uid is not None else None
    if uid is None:
        getuid = getattr(os, "getuid", None)
        uid = getuid() if getuid is not None else FALLBACK_UID
        if uid == 0:
            uid = FALLBACK_UID  # root on the host (CI): still never root in the container
    return validators.uid(uid)


def _safe_url(url: str) -> str:
    if not _SAFE_URL.match(url):
        raise OptionError(f"The index URL {url!r} has characters that cannot be written safely into a Dockerfile",
                          "Percent-encode them in the pip configuration.")
    return url


def _installed(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def _repository(ref: str) -> str:
    name = ref.split("@", 1)[0]
    head, _, last = name.rpartition("/")
    return (head + "/" if head else "") + last.split(":", 1)[0]


def _is_cuda_base(ref: str) -> bool:
    return _repository(ref).endswith("nvidia/cuda")


def _is_python_base(ref: str) -> bool:
    return _repository(ref) in ("python", "library/python", "docker.io/library/python")


def _notebook_folder(snapshot: EnvironmentSnapshot) -> str:
    try:
        return snapshot.notebook_folder
    except ValueError as exc:
        raise OptionError(f"The notebook's local code or data lies too far above it ({exc})",
                          "Move the notebook into the project that holds its code.") from None


def make_plan(snapshot: EnvironmentSnapshot, spec: JobSpec | None = None, *, has_cert: bool | None = None,
              buildkit: bool = False) -> Plan:
    """Validate the inputs and decide everything the Dockerfile needs.

    ``buildkit``: the engine builds with BuildKit. The BuildKit layout is used unless the
    build needs credentials (BuildKit secrets need a client session the SDK cannot hold),
    git or a uv-managed Python, which keep the classic builder stage.
    """
    python_version = validators.python_version(snapshot.python_version)
    official = default_base_image(python_version)
    chosen = (spec.build.base_image if spec is not None else None) or snapshot.gpu.cuda_base_image or official
    base = validators.image_ref(chosen, "The base image", pinned=True)
    if _is_cuda_base(base):
        python_kind, builder = "managed", official
    elif _is_python_base(base):
        python_kind, builder = "official", base
    else:
        python_kind, builder = "path", base
    config = snapshot.pip_config
    kernel_lock = locks.kernel_lock(snapshot, _installed("ipykernel"))
    if spec is not None and spec.build.wheels_from_kernel:
        _check_all_wheels(snapshot, kernel_lock)
    no_index = kernel_lock is None and bool(snapshot.distributions) and all(
        d.source == "local-wheel" for d in snapshot.distributions)
    if no_index:  # the kernel's indexes serve nothing: none is written, no credential is passed
        from ..capture.snapshot import PipConfig

        config = PipConfig(cert_file=config.cert_file)
    secrets = tuple(validate_arg_name(n) for n in config.secret_build_args)
    from ..capture.pipconfig import EXTRA_INDEX_ARG, INDEX_ARG

    secret_index = INDEX_ARG if INDEX_ARG in secrets else None
    index_url = None if secret_index or config.index_url is None else _safe_url(config.index_url)
    extras: list[str] = []
    for i, url in enumerate(config.extra_index_urls):
        arg = EXTRA_INDEX_ARG.format(i)
        extras.append("${" + arg + "}" if arg in secrets else _safe_url(url))
    # A framework's own index (PyTorch's) serves its local builds (+cpu, +cu121); carried wheels don't need it.
    local_builds = any(d.source == "index" and "+" in d.version for d in snapshot.distributions)
    for url in snapshot.gpu.extra_index_urls if local_builds else ():
        if url not in extras:
            extras.append(_safe_url(url))
    for host in config.trusted_hosts:
        if not _SAFE_HOST.match(host):
            raise OptionError(f"The trusted host {host!r} is not a plain host name", "Check pip's trusted-host setting.")
    hosts = tuple(config.trusted_hosts)
    packages = tuple(sorted({validate_debian_package(p) for p in snapshot.system_packages}))
    freeze = spec.build.freeze if spec is not None else "imports"
    needs_git = any(d.source == "vcs" for d in snapshot.distributions)
    cuda = snapshot.gpu.cuda_version
    if cuda is not None:
        validators.version(cuda, "CUDA")
    return Plan(
        base_image=base,
        builder_image=builder,
        python_version=python_version,
        python_kind=python_kind,
        uid=container_uid(spec),
        notebook_name=snapshot.notebook.name,
        notebook_folder=_notebook_folder(snapshot),
        requirements_lock=locks.requirements_lock(snapshot, freeze),
        kernel_lock=kernel_lock,
        has_wheels=any(d.source == "local-wheel" for d in snapshot.distributions),
        has_cert=config.cert_file is not None if has_cert is None else has_cert,
        needs_git=needs_git,
        system_packages=packages,
        index_url=index_url,
        secret_index_arg=secret_index,
        extra_index_urls=tuple(extras),
        secret_args=secrets,
        trusted_hosts=hosts,
        cuda_version=cuda,
        uv_version=validators.version(_installed("uv") or DEFAULT_UV_VERSION, "uv"),
        tool_version=validators.version(locks.tool_version(), "jupyter-containerize"),
        buildkit=buildkit and not secrets and python_kind != "managed" and not needs_git,
        precompile=tuple(m for m in snapshot.modules if _MODULE.match(m)),
        no_index=no_index,
        carry_uv=_carry_uv(snapshot, no_index),
    )


def _carry_uv(snapshot: EnvironmentSnapshot, no_index: bool) -> bool:
    """Whether the build needs no index at all (``--wheels-from-kernel``): then uv comes from this machine.

    Raises:
        OptionError: this machine's uv cannot run in a linux/amd64 image.
    """
    if not (no_index and snapshot.runner_distributions):
        return False
    if platform.system() != "Linux" or platform.machine() not in ("x86_64", "AMD64"):
        raise OptionError(f"--wheels-from-kernel carries this machine's uv into the image, and it is built for "
                          f"{platform.system()} {platform.machine()}, not linux/amd64",
                          "Run the build on a Linux x86_64 machine, or build without --wheels-from-kernel.")
    return True


def _check_all_wheels(snapshot: EnvironmentSnapshot, kernel_lock: str | None) -> None:
    """``--wheels-from-kernel`` needs every pin as a context wheel and ipykernel among them."""
    others = [f"{d.name}=={d.version}" for d in snapshot.distributions if d.source != "local-wheel"]
    if kernel_lock is not None:
        others.append("ipykernel")
    if others:
        raise OptionError(f"--wheels-from-kernel builds without a package index, but {', '.join(others)} "
                          "would come from one",
                          "Capture with --wheels-from-kernel too (it carries the kernel's wheels), or drop the flag.")


def render_dockerfile(snapshot: EnvironmentSnapshot, spec: JobSpec | None = None) -> str:
    """The Dockerfile for ``snapshot`` (and ``spec``'s build options), as text.

    Raises:
        OptionError: a value (base image, UID, package name, URL) cannot be used safely.
    """
    return dockerfile_text(make_plan(snapshot, spec))


def _python(plan: Plan) -> str:
    if plan.python_kind == "official":
        return "/usr/local/bin/python3"
    if plan.python_kind == "managed":
        return plan.python_version  # uv finds its managed install by version
    return "python3"


def _secret_prefix(plan: Plan, tool: str) -> str:
    """Shell assignment that puts the credentialed main index URL into one RUN's environment only."""
    if not plan.secret_index_arg:
        return ""
    return f'{tool}_INDEX_URL="${{{plan.secret_index_arg}}}" '


def _lock_install(plan: Plan, python: str, lock: str) -> str:
    """The command that installs the user's lock: extra indexes in its environment alone, or ``--no-index``."""
    prefix = ""
    if plan.extra_index_urls:
        # uv by default stops at the first index that has a name; the lock pins exact versions
        # (e.g. torch==2.4.0+cu121 only on PyTorch's index). Public URLs passed _safe_url: no quote or $.
        prefix = f'UV_EXTRA_INDEX_URL="{" ".join(plan.extra_index_urls)}" UV_INDEX_STRATEGY=unsafe-best-match '
    offline = " --no-index" if plan.no_index else ""
    return f"{prefix}uv pip install --python {python}{offline} --no-deps -r {lock}"


def _uv_tool(plan: Plan, install: str) -> list[str]:
    """uv into its own folder: this machine's binary when the build has no index, else ``install`` from the index."""
    if plan.carry_uv:
        return [f"COPY tools/uv {UV_DIR}/bin/uv", f"RUN chmod 0755 {UV_DIR}/bin/uv"]
    return [f"RUN {install}"]


def _offline(plan: Plan) -> str:
    """`` --no-index`` for the runner's install when it is the kernel's wheels."""
    return " --no-index" if plan.carry_uv else ""


def _index_env(plan: Plan) -> list[str]:
    """``NAME="value"`` words that point pip and uv at the credential-free main index (extras: see _lock_install)."""
    index_env: list[str] = []
    if plan.index_url:
        index_env += [f"UV_INDEX_URL={quoted(plan.index_url, 'index URL')}",
                      f"PIP_INDEX_URL={quoted(plan.index_url, 'index URL')}"]
    if plan.trusted_hosts:
        hosts = " ".join(plan.trusted_hosts)
        index_env += [f"UV_INSECURE_HOST={quoted(hosts, 'host')}", f"PIP_TRUSTED_HOST={quoted(hosts, 'host')}"]
    return index_env


def _builder(plan: Plan) -> list[str]:
    py = _python(plan)
    out = [f"FROM {plan.builder_image} AS builder"]
    env = [
        "UV_NO_CACHE=1",
        "UV_COMPILE_BYTECODE=1",
        "UV_LINK_MODE=copy",
        "UV_PYTHON_DOWNLOADS=" + ("automatic" if plan.python_kind == "managed" else "never"),
        "PIP_NO_CACHE_DIR=1",
        "PIP_DISABLE_PIP_VERSION_CHECK=1",
        "PIP_BREAK_SYSTEM_PACKAGES=1",  # builder only: a distro python3 refuses pip installs otherwise
    ]
    if plan.python_kind == "managed":
        # only-managed: the slim builder's own /usr/local python does not exist in the CUDA stage.
        env += [f"UV_PYTHON_INSTALL_DIR={MANAGED_PYTHON_DIR}", "UV_PYTHON_PREFERENCE=only-managed"]
    out.append("ENV " + " \\\n    ".join(env))
    if plan.has_cert:
        out.append(f"COPY certs/ca.crt {BUILD_DIR}/ca.crt")
        out.append(f"ENV SSL_CERT_FILE={BUILD_DIR}/ca.crt PIP_CERT={BUILD_DIR}/ca.crt")
    index_env = _index_env(plan)
    if index_env:
        out.append("ENV " + " \\\n    ".join(index_env))
    for arg in plan.secret_args:
        out.append(f"ARG {arg}")
    if plan.needs_git:
        out.append("RUN apt-get update && apt-get install -y --no-install-recommends git \\\n"
                   " && rm -rf /var/lib/apt/lists/*")
    pip_prefix = _secret_prefix(plan, "PIP")
    uv_prefix = _secret_prefix(plan, "UV")
    # A folder of its own: where pip puts scripts depends on the base's Python (Debian's differs).
    out += _uv_tool(plan, f"{pip_prefix}python3 -m pip install --no-cache-dir --target {UV_DIR} uv=={plan.uv_version}")
    out.append(f"ENV PATH={UV_DIR}/bin:$PATH")
    if plan.python_kind == "managed":
        out.append(f"RUN {uv_prefix}uv python install {plan.python_version}")
    out.append(f"COPY requirements.lock {BUILD_DIR}/requirements.lock")
    if plan.has_wheels:
        out.append("COPY wheels/ /wheels/")
    out.append(
        f"RUN uv venv {VENV} --python {py} \\\n"
        f" && {uv_prefix}{_lock_install(plan, f'{VENV}/bin/python', f'{BUILD_DIR}/requirements.lock')}"
    )
    if plan.kernel_lock is not None:
        out.append(f"COPY kernel.lock {BUILD_DIR}/kernel.lock")
        out.append(f"RUN {uv_prefix}uv pip install --python {VENV}/bin/python "
                   f"-r {BUILD_DIR}/kernel.lock -c {BUILD_DIR}/requirements.lock")
    out.append(f"COPY runner.lock {BUILD_DIR}/runner.lock")
    out.append(
        f"RUN uv venv {RUNNER_VENV} --python {py} \\\n"
        f" && {uv_prefix}uv pip install --python {RUNNER_VENV}/bin/python{_offline(plan)} -r {BUILD_DIR}/runner.lock"
    )
    return out


def _final_head(plan: Plan) -> list[str]:
    """The final stage's base, OS packages and non-root user."""
    uid = plan.uid
    out = [f"FROM {plan.base_image}"]
    if plan.system_packages:
        out.append("RUN apt-get update \\\n && apt-get install -y --no-install-recommends "
                   + " ".join(plan.system_packages) + " \\\n && apt-get clean && rm -rf /var/lib/apt/lists/*")
    # --non-unique: the base may already have this UID (ubuntu:24.04 has 1000);
    # --no-log-init: a huge host UID would otherwise make a sparse multi-GB lastlog.
    # /work is the user's: a job mounts a volume there that the engine seeds (owner included) from the image.
    out.append(
        f"RUN groupadd --gid {uid} --non-unique jc \\\n"
        f" && useradd --uid {uid} --gid {uid} --non-unique --no-log-init --create-home --home-dir /home/jc "
        f"--shell /bin/sh jc \\\n"
        f" && mkdir -p {OUTPUT_DIR_IN_CONTAINER} {WORK_DIR_IN_CONTAINER} \\\n"
        f" && chown {uid}:{uid} {OUTPUT_DIR_IN_CONTAINER} {WORK_DIR_IN_CONTAINER}"
    )
    return out


def _final(plan: Plan) -> list[str]:
    out = _final_head(plan)
    if plan.python_kind == "managed":
        out.append(f"COPY --from=builder {MANAGED_PYTHON_DIR} {MANAGED_PYTHON_DIR}")
    out.append(f"COPY --from=builder {VENV} {VENV}")
    out.append(f"COPY --from=builder {RUNNER_VENV} {RUNNER_VENV}")
    return out + _final_tail(plan)


def _final_tail(plan: Plan) -> list[str]:
    """The runner, the job's environment, the notebook, the labels."""
    uid = plan.uid
    nb_path = posixpath.join(WORK_DIR_IN_CONTAINER, plan.notebook_folder, plan.notebook_name)
    out = [f"COPY jc/ {JC_DIR}/"]
    env = [
        "PYTHONUNBUFFERED=1",
        "PYTHONDONTWRITEBYTECODE=1",
        f"PATH={VENV}/bin:$PATH",
        "HOME=/tmp",  # the root filesystem is read-only at run time; /tmp is a tmpfs
        "JUPYTER_RUNTIME_DIR=/tmp/jupyter-runtime",
        "IPYTHONDIR=/tmp/ipython",
        "MPLCONFIGDIR=/tmp/matplotlib",
        f"JUPYTER_PATH={JC_DIR}/share",
        f"JC_OUTPUT_DIR={OUTPUT_DIR_IN_CONTAINER}",
    ]
    if plan.cuda_version:
        env += ["NVIDIA_VISIBLE_DEVICES=all", "NVIDIA_DRIVER_CAPABILITIES=compute,utility",
                f"JC_CUDA_VERSION={plan.cuda_version}"]
    out.append("ENV " + " \\\n    ".join(env))
    out.append(f"VOLUME {json_array(OUTPUT_DIR_IN_CONTAINER)}")
    out.append(f"WORKDIR {WORK_DIR_IN_CONTAINER}")  # the runner starts the kernel in the notebook's folder
    out.append(f"USER {uid}:{uid}")
    out.append(f"ENTRYPOINT {json_array(f'{RUNNER_VENV}/bin/python', f'{JC_DIR}/runner.py')}")
    out.append(f"CMD {json_array(nb_path)}")
    # The notebook and local code last (then only the labels): a notebook edit rebuilds
    # two steps. A folder copy keeps every file name (quotes, newlines, $) out of the Dockerfile.
    out.append(f"COPY --chown={uid}:{uid} work/ {WORK_DIR_IN_CONTAINER}/")
    labels = [
        f"{LABEL_PREFIX}.lock-hash={locks.lock_hash(plan.requirements_lock)}",
        f"{LABEL_PREFIX}.notebook={label_text(plan.notebook_name)}",
        f"{LABEL_PREFIX}.version={plan.tool_version}",
        f"{LABEL_PREFIX}.python={plan.python_version}",
    ]
    if plan.cuda_version:
        labels.append(f"{LABEL_PREFIX}.cuda={plan.cuda_version}")
    out.append("LABEL " + " \\\n      ".join(labels))
    return out


def _buildkit(plan: Plan) -> list[str]:
    """One final stage that installs the venvs itself, with everything else mounted.

    uv comes from a tool stage, the locks, wheels and CA bundle from the context, and
    uv's cache from a BuildKit cache mount: none of them is written to a layer, and a new
    environment installs from the cache instead of the index. The runner's venv, the same
    for every notebook, comes before the user's, so a new environment reuses its layer.
    Instead of compiling all bytecode (UV_COMPILE_BYTECODE, seconds per hundred MB), the
    build imports the modules the notebook, the kernel and the runner import, which leaves
    exactly their bytecode and shows, in the build log, a module that cannot be imported.
    """
    py = _python(plan)
    pip_env = ["PIP_DISABLE_PIP_VERSION_CHECK=1", "PIP_BREAK_SYSTEM_PACKAGES=1"] + _index_env(plan)
    cert = [f"--mount=type=bind,source=certs/ca.crt,target={BK_DIR}/ca.crt"] if plan.has_cert else []
    if plan.has_cert:
        pip_env += [f"PIP_CERT={BK_DIR}/ca.crt", f"SSL_CERT_FILE={BK_DIR}/ca.crt"]
    install = _run(["--mount=type=cache,id=jupyter-containerize-pip,target=/root/.cache/pip", *cert],
                   [f"{' '.join(pip_env)} python3 -m pip install --target {UV_DIR} uv=={plan.uv_version}"])
    out = [f"FROM {plan.builder_image} AS uv", *_uv_tool(plan, install.removeprefix("RUN ")), ""]
    out += _final_head(plan)
    uv = [f"--mount=type=bind,from=uv,source={UV_DIR},target={BK_DIR}/uv", *cert,
          f"--mount=type=cache,id=jupyter-containerize-uv,target={BK_DIR}/cache,sharing=locked"]
    uv_env = [f"PATH={BK_DIR}/uv/bin:$PATH", f"UV_CACHE_DIR={BK_DIR}/cache", "UV_LINK_MODE=copy",
              "UV_PYTHON_DOWNLOADS=never"] + _index_env(plan)
    if plan.has_cert:
        uv_env.append(f"SSL_CERT_FILE={BK_DIR}/ca.crt")
    export = f"export {' '.join(uv_env)}"
    script = f"--mount=type=bind,source=build/precompile.py,target={BK_DIR}/precompile.py"
    runner_wheels = ["--mount=type=bind,source=wheels,target=/wheels"] if plan.carry_uv else []
    out.append(_run([*uv, f"--mount=type=bind,source=runner.lock,target={BK_DIR}/runner.lock", script,
                     f"--mount=type=bind,source=build/runner.txt,target={BK_DIR}/runner.txt", *runner_wheels],
                    [export, f"uv venv {RUNNER_VENV} --python {py}",
                     f"uv pip install --python {RUNNER_VENV}/bin/python{_offline(plan)} -r {BK_DIR}/runner.lock",
                     f"{RUNNER_VENV}/bin/python {BK_DIR}/precompile.py {BK_DIR}/runner.txt"]))
    mounts = [*uv, f"--mount=type=bind,source=requirements.lock,target={BK_DIR}/requirements.lock"]
    steps = [export, f"uv venv {VENV} --python {py}",
             _lock_install(plan, f"{VENV}/bin/python", f"{BK_DIR}/requirements.lock")]
    if plan.kernel_lock is not None:
        mounts.append(f"--mount=type=bind,source=kernel.lock,target={BK_DIR}/kernel.lock")
        steps.append(f"uv pip install --python {VENV}/bin/python -r {BK_DIR}/kernel.lock "
                     f"-c {BK_DIR}/requirements.lock")
    if plan.has_wheels:
        mounts.append("--mount=type=bind,source=wheels,target=/wheels")
    out.append(_run(mounts, steps))
    # Its own step, after the install: a notebook edit that imports a new module of an
    # installed package re-runs only this one.
    out.append(_run([script, f"--mount=type=bind,source=build/modules.txt,target={BK_DIR}/modules.txt"],
                    [f"{VENV}/bin/python {BK_DIR}/precompile.py {BK_DIR}/modules.txt"]))
    return out + _final_tail(plan)


def _run(mounts: list[str], commands: list[str]) -> str:
    """``RUN --mount=… \\ command && command``, one mount and one command a line."""
    return "RUN " + "".join(m + " \\\n    " for m in mounts) + " \\\n && ".join(commands)


def precompile_lists(plan: Plan) -> dict[str, str]:
    """The module lists the BuildKit layout's precompile step reads (context path → text)."""
    env = list(dict.fromkeys(plan.precompile + KERNEL_MODULES))
    return {"build/modules.txt": "\n".join(env) + "\n", "build/runner.txt": "\n".join(RUNNER_MODULES) + "\n"}


def dockerfile_text(plan: Plan) -> str:
    """The Dockerfile of a plan."""
    head = [(f"# Generated by jupyter-containerize {plan.tool_version} for {comment_text(plan.notebook_name)};"
             " regenerate rather than edit.")]
    if plan.buildkit:
        head.append("# Needs BuildKit (the default builder since Docker 23; DOCKER_BUILDKIT=1 before).")
        return "\n".join(head + [""] + _buildkit(plan)) + "\n"
    head.append("# Builds with Docker's classic builder (no BuildKit syntax).")
    return "\n".join(head + [""] + _builder(plan) + [""] + _final(plan)) + "\n"
