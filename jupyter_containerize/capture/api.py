"""``capture()``: notebook + kernel interpreter → :class:`EnvironmentSnapshot`."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any, NoReturn, get_args

from ..errors import CaptureError, listing
from ..jobspec import FreezeMode
from .distributions import (
    PYPI_SIMPLE,
    Environment,
    all_distributions,
    build_local_wheel,
    check_index_availability,
    closure,
    optional_closure,
    parse_root,
    pin_distribution,
    pip_names,
    target_marker_environment,
)
from .gpu import detect_gpu
from .imports import SELF_MODULES, NotebookImports, scan_notebook
from .interpreter import kernel_spec, run_probe
from .pipconfig import HostIndex, host_index, pip_config_from_probe
from .platforms import drop_platform_only, foreign_platform_warning, kernel_platform_only, platform_only
from .probe import normalize
from .resolve import resolve_for_target, unavailable_on_target
from .snapshot import EnvironmentSnapshot, PinnedDistribution, PipConfig
from .system import system_packages
from .undeclared import undeclared_imports
from .wheels import WheelFinder, carry_wheels, missing_wheels_error, wheel_finder

KERNEL_DISTRIBUTIONS = ("ipykernel",)
RUNNER_PACKAGES = ("nbclient", "nbformat")  # the job's runner venv (/opt/jc-runner): nbclient runs the notebook
_SELF_DIST = "jupyter-containerize"


def capture(
    notebook: Path,
    python: str | None = None,
    *,
    freeze: FreezeMode = "imports",
    in_process: bool = False,
    extra_modules: Iterable[str] = (),
    platform_target: str = "linux/amd64",
    check_index: bool = False,
    wheel_dir: Path | None = None,
    wheels_from_kernel: bool = False,
) -> EnvironmentSnapshot:
    """Capture what the notebook needs from its kernel's environment, pinned exactly.

    Args:
        notebook: the ``.ipynb`` file.
        python: the kernel's interpreter; ``None``: the notebook kernelspec's (else this one).
        freeze: ``"imports"`` pins the closure of what the notebook uses and the installed optional
            dependencies it can use; ``"imports-only"`` the closure alone; ``"all"`` every distribution.
        in_process: probe this interpreter directly and add the modules it has imported
            (``sys.modules``), as the magics do from inside the live kernel.
        extra_modules: more module names to treat as imported.
        platform_target: OS/CPU of the image (markers and platform-only packages follow it).
        check_index: ask the package index whether each pinned version exists (network).
        wheel_dir: build wheels of local projects (and copy the kernel's wheels the index lacks) there
            now; ``None`` defers that to render (:func:`build_local_wheels`).
        wheels_from_kernel: carry a wheel of every pin, found on this machine (see :mod:`.wheels`), so
            the image builds without a package index.

    Raises:
        NotebookError: the notebook cannot be read.
        InterpreterError: the kernelspec is unknown or the interpreter can't run.
        CaptureError: the environment can't be captured faithfully (e.g. the notebook imports a
            module the kernel does not have, or a local project won't build).
    """
    notebook = Path(notebook)
    env_vars: dict[str, str] = {}
    if in_process:
        python = None
    elif python is None:
        python, env_vars = kernel_spec(notebook)
    probe = run_probe(python, env=env_vars, cwd=notebook.resolve().parent if not in_process else None)
    dynamic = _imported_modules(probe) if in_process else ()
    return snapshot_from_probe(
        notebook, probe, freeze=freeze, extra_modules=extra_modules, dynamic_modules=dynamic,
        platform_target=platform_target, check_index=check_index, wheel_dir=wheel_dir,
        wheels_from_kernel=wheels_from_kernel,
    )


def _imported_modules(probe: Mapping[str, Any]) -> list[str]:
    stdlib = set(probe.get("stdlib_module_names", ()))
    names: set[str] = set()
    for name in list(sys.modules):
        top = name.partition(".")[0]
        if top in stdlib or top.startswith("_") or top in SELF_MODULES:
            continue
        names.add(name if name.count(".") <= 2 else ".".join(name.split(".")[:3]))
    return sorted(names)


def snapshot_from_probe(
    notebook: Path,
    probe: Mapping[str, Any],
    *,
    freeze: FreezeMode = "imports",
    extra_modules: Iterable[str] = (),
    dynamic_modules: Iterable[str] = (),
    platform_target: str = "linux/amd64",
    check_index: bool = False,
    wheel_dir: Path | None = None,
    wheels_from_kernel: bool = False,
) -> EnvironmentSnapshot:
    """The snapshot of ``notebook`` in the environment a probe described (see :mod:`.probe`).

    ``dynamic_modules`` are modules the live kernel imported; those that belong only to
    jupyter-containerize's own dependencies are ignored, unknown ones silently.

    Raises:
        CaptureError: the notebook imports (outside ``try/except ImportError``) a module that the
            kernel does not have and no ``pip install`` line of the notebook installs; or, with
            ``wheels_from_kernel``, a pin has no wheel for the image on this machine.
    """
    if freeze not in get_args(FreezeMode):
        raise CaptureError(f"Unknown freeze mode {freeze!r}.", f"Use one of {', '.join(get_args(FreezeMode))}.")
    env = Environment(probe)
    nb = scan_notebook(notebook, env.stdlib)
    warnings: list[str] = list(nb.warnings)
    wanted = list(nb.modules) + [m for m in extra_modules if m.partition(".")[0] not in env.stdlib]
    roots, imports, imported, absent = _imported_roots(env, nb, wanted)
    kernel_local = _kernel_local_code(notebook, absent) if dynamic_modules else {}
    warnings += _check_absent(nb, [m for m in absent if m.partition(".")[0] not in kernel_local],
                              str(probe["executable"]))
    marker_env = target_marker_environment(probe, platform_target)
    _add_roots(roots, env, nb.requirements, list(dynamic_modules), marker_env, freeze)
    foreign = foreign_platform_warning(probe, platform_target)
    if foreign:
        warnings.append(foreign)
    kernel_env: dict[str, str] = dict(probe["marker_environment"])
    kernel_only = kernel_platform_only(env, kernel_env, marker_env) if kernel_env != marker_env else set()
    kernel_platform = f"{kernel_env.get('sys_platform', '')}/{kernel_env.get('platform_machine', '')}"
    kept, platform_warnings = drop_platform_only(roots, platform_target, kernel_only, kernel_platform)
    warnings += platform_warnings
    found, missing, reasons = _pinned_closure(env, kept, marker_env, freeze, platform_target)
    dists = [env.dists[k] for k in sorted(found)]
    pins = []
    pin_warnings: dict[str, str] = {}
    for dist in dists:
        pin, warning = pin_distribution(dist)  # wheels are built or copied once carry_wheels has decided
        pins.append(replace(pin, reason=reasons.get(dist.key, "")))
        if warning:
            pin_warnings[dist.key] = warning
    packages, lib_warnings = system_packages(dists, str(probe.get("machine", "x86_64")))
    warnings += lib_warnings
    pip_config, pip_warnings = pip_config_from_probe(probe.get("pip_config", {}))
    warnings += pip_warnings
    host = host_index(probe.get("pip_config", {}))
    python_version = str(probe["python_version"])
    if foreign:
        warnings += _target_warnings(pins, python_version, platform_target, host)
    kernel = env.get("ipykernel")
    if missing:
        # the lock is installed with --no-deps: what the image needs and the kernel lacks is pinned here
        resolved = resolve_for_target(
            _needed_by(env, found, missing), {d.name: d.version for d in env.dists.values()},
            pinned=set(found), python_version=python_version, platform_target=platform_target, index=host,
            kernel=str(probe["executable"]),
        )
        pins += resolved
        warnings.append(f"Required on {platform_target} but not installed in {probe['executable']}, so resolved "
                        f"for the image: {', '.join(p.requirement for p in resolved)}.")
    finder = _finder(probe, python_version, platform_target, wheels_from_kernel)
    carried = carry_wheels(pins, env, finder, every=wheels_from_kernel,
                           index_url=pip_config.secret_values.get("JC_INDEX_URL") or pip_config.index_url or PYPI_SIMPLE,
                           cert=pip_config.cert_file)
    if carried.missing:
        raise missing_wheels_error(carried.missing, finder)
    if wheels_from_kernel and kernel is None:
        raise CaptureError(f"--wheels-from-kernel builds without a package index, but the kernel "
                           f"({probe['executable']}) has no ipykernel to carry",
                           "Install ipykernel there, or build without --wheels-from-kernel.")
    pins = [build_local_wheel(p, wheel_dir) if wheel_dir is not None and p.source == "local-wheel" else p
            for p in carried.pins]
    runner = _carried_runner(env, marker_env, finder, str(probe["executable"]), wheel_dir) if wheels_from_kernel else ()
    now_wheels = {normalize(label.partition("==")[0]) for label in carried.carried}
    warnings += [w for key, w in sorted(pin_warnings.items()) if key not in now_wheels]
    warnings += carried.warnings
    if check_index:
        warnings += _index_warnings(pins, pip_config)
    return EnvironmentSnapshot(
        notebook=notebook,
        python_version=str(probe["python_version"]),
        python_executable=str(probe["executable"]),
        platform=str(probe["platform"]),
        machine=str(probe["machine"]),
        imports=tuple(sorted(imports)),
        distributions=tuple(sorted(pins, key=lambda p: normalize(p.name))),
        explicit_requirements=nb.requirements,
        local_modules=tuple(sorted({*nb.local_modules, *kernel_local.values()})),
        data_paths=nb.data_paths,
        references=nb.why,
        system_packages=tuple(packages),
        gpu=detect_gpu(dists),
        pip_config=pip_config,
        ipykernel_version=kernel.version if kernel else None,
        warnings=tuple(dict.fromkeys(warnings)),
        modules=tuple(sorted(imported)),
        runner_distributions=runner,
    )


def _imported_roots(
    env: Environment, nb: NotebookImports, wanted: Iterable[str]
) -> tuple[dict[str, None], set[str], set[str], list[str]]:
    """The distributions (in order) that provide the ``wanted`` modules, the names imported, the modules
    found, and those no installed distribution provides."""
    roots: dict[str, None] = {}
    imports: set[str] = set()
    imported: set[str] = set()
    absent: list[str] = []
    for module in wanted:
        name, keys = env.resolve(module, [n for n in nb.from_names if n.startswith(module + ".")])
        if not keys:
            absent.append(module)
            continue
        imports.add(name if "." in name else module)
        imported.add(module)
        roots.update(dict.fromkeys(env.dists[k].name for k in keys))
    return roots, imports, imported, absent


def _check_absent(nb: NotebookImports, absent: list[str], executable: str) -> list[str]:
    """Warnings for the imported modules the kernel lacks.

    Raises:
        CaptureError: one of them is required (not guarded) and no ``pip install`` line installs it.
    """
    required = [m for m in absent if m in nb.modules and m not in nb.guarded]
    # a requirements file may install anything: then nothing counts as missing
    fatal = [] if nb.requirement_files else _not_installable(required, nb.requirements)
    if fatal:
        _raise_missing(fatal, executable, nb.search_folders)
    warnings = []
    for module in absent:
        why = " (an optional import, inside try/except)" if module in nb.guarded else ""
        warnings.append(f"Module {module} is imported{why} but not installed in {executable}; "
                        "nothing was pinned for it.")
    return warnings


def _add_roots(roots: dict[str, None], env: Environment, requirements: Iterable[str], dynamic: list[str],
               marker_env: Mapping[str, str], freeze: FreezeMode) -> None:
    """Add to ``roots`` what the live kernel imported, what the notebook pip-installs, the kernel's own
    distributions and, with ``freeze="all"``, every distribution."""
    if dynamic:
        tool = closure(env, [_SELF_DIST], marker_env)[0] if _SELF_DIST in env.dists else {}
        for module in dynamic:
            for key in env.distributions_of(module):
                if key not in tool and key != _SELF_DIST:
                    roots.setdefault(env.dists[key].name, None)
    from packaging.requirements import InvalidRequirement, Requirement

    for text in requirements:
        try:
            req = Requirement(text)
        except InvalidRequirement:
            continue
        if env.get(req.name) is not None:
            roots.setdefault(text if req.extras else env.get(req.name).name, None)  # type: ignore[union-attr]
    roots.update(dict.fromkeys(env.dists[k].name for k in (normalize(n) for n in KERNEL_DISTRIBUTIONS)
                               if k in env.dists))
    if freeze == "all":
        roots.update(dict.fromkeys(all_distributions(env)))


def _pinned_closure(
    env: Environment, kept: list[str], marker_env: Mapping[str, str], freeze: FreezeMode, platform_target: str
) -> tuple[dict[str, set[str]], list[str], dict[str, str]]:
    """The closure of ``kept`` to pin (with ``freeze="imports"`` the optional dependencies it can use),
    the requirements it lacks, and why each optional one is there."""
    found, missing = closure(env, kept, marker_env)
    reasons: dict[str, str] = {}
    kernel_keys = {normalize(n) for n in KERNEL_DISTRIBUTIONS}
    libraries = [key for key, _ in map(parse_root, kept) if key not in kernel_keys]
    for dep, why in undeclared_imports(env, libraries, found).items():
        added, absent = closure(env, [env.dists[dep].name], marker_env)
        missing += absent
        for key in added:
            if key not in found:
                found[key] = added[key]
                reasons[key] = why if key == dep else f"needed by {env.dists[dep].name}, {why}"
    if freeze == "imports":
        # What the notebook's own distributions can use; the kernel's extras (ipykernel[test]…) are not its needs.
        used = closure(env, [r for r in kept if normalize(r) not in kernel_keys], marker_env)[0]
        grown, optional, optional_missing = optional_closure(env, used, marker_env)
        reasons |= {key: why for key, why in optional.items() if key not in found}
        found = {**grown, **found}
        missing = sorted(set(missing) | set(optional_missing))
    for key in sorted(found):
        if platform_target.startswith("linux") and platform_only(key):
            del found[key]
    return found, missing, reasons


def _target_warnings(pins: list[PinnedDistribution], python_version: str, platform_target: str,
                     host: HostIndex) -> list[str]:
    """A warning naming the pins that cannot be installed on a foreign ``platform_target``."""
    try:
        unavailable = unavailable_on_target(pins, python_version=python_version,
                                            platform_target=platform_target, index=host)
    except CaptureError as exc:
        return [f"{exc.message} Pins were not checked for {platform_target}."]
    if unavailable:
        return [f"No wheel for {platform_target} and no source distribution on the package index, "
                f"so the image build will fail for: {', '.join(unavailable)}."]
    return []


def _index_warnings(pins: list[PinnedDistribution], pip_config: PipConfig) -> list[str]:
    """A warning naming the pins whose versions the package index does not have."""
    index = pip_config.secret_values.get("JC_INDEX_URL") or pip_config.index_url or PYPI_SIMPLE
    try:
        absent = check_index_availability(pins, index, cert=pip_config.cert_file)
    except CaptureError as exc:
        return [f"{exc.message} Versions were not checked."]
    if absent:
        return [f"Not on the package index ({pip_config.index_url or PYPI_SIMPLE}), so the image "
                f"build will fail for: {', '.join(absent)}. Install index versions of them "
                "in the kernel, or make those builds available on an index."]
    return []


def _carried_runner(env: Environment, marker_env: Mapping[str, str], finder: WheelFinder, executable: str,
                    wheel_dir: Path | None) -> tuple[PinnedDistribution, ...]:
    """The job runner's closure (nbclient, nbformat) as the kernel's own wheels, for a build without an index.

    Raises:
        CaptureError: the kernel lacks one of them, or a wheel of its closure is nowhere on this machine.
    """
    absent = [name for name in RUNNER_PACKAGES if env.get(name) is None]
    if absent:
        raise CaptureError(f"--wheels-from-kernel builds the job's runner from the kernel's wheels, but the kernel "
                           f"({executable}) has no {listing(absent)}",
                           f"Install {' '.join(absent)} there, or build without --wheels-from-kernel.")
    keys = sorted(closure(env, list(RUNNER_PACKAGES), marker_env)[0])
    carried = carry_wheels([pin_distribution(env.dists[k])[0] for k in keys], env, finder, every=True,
                           index_url=PYPI_SIMPLE)
    if carried.missing:
        raise missing_wheels_error(carried.missing, finder)
    return tuple(build_local_wheel(p, wheel_dir) if wheel_dir is not None else p for p in carried.pins)


def _finder(probe: Mapping[str, Any], python_version: str, platform_target: str, every: bool) -> WheelFinder:
    """The kernel's wheels; for a platform wheels are not matched for, none (an error when all are needed)."""
    try:
        return wheel_finder(probe, python_version, platform_target)
    except CaptureError:
        if every:
            raise
        return WheelFinder((), (), frozenset())


def _needed_by(env: Environment, found: Mapping[str, set[str]], missing: Iterable[str]) -> dict[str, list[str]]:
    """Each requirement line of ``missing`` with the names of the distributions in ``found`` that state it."""
    lines = set(missing)
    users: dict[str, list[str]] = {line: [] for line in sorted(lines)}
    for key in sorted(found):
        for _dep, _extras, _marker, line in env.requirements(key):
            if line in lines:
                users[line].append(env.dists[key].name)
    return users


def _not_installable(modules: list[str], requirements: Iterable[str]) -> list[str]:
    """Top-level names of ``modules`` that no ``pip install`` line of the notebook installs.

    A line whose packages can't be named here (a path, a URL) might install anything, so then
    none counts as missing.
    """
    from packaging.requirements import InvalidRequirement, Requirement

    installed: set[str] = set()
    for text in requirements:
        try:
            req = Requirement(text)
        except InvalidRequirement:
            return []
        installed.add(normalize(req.name))
    tops = dict.fromkeys(m.partition(".")[0] for m in modules)
    return [top for top in tops if not installed & {normalize(n) for n in pip_names(top)}]


def _raise_missing(modules: list[str], executable: str, folders: tuple[str, ...]) -> NoReturn:
    them = "it" if len(modules) == 1 else "them"
    where = listing([f.rstrip("/") + "/" if f != "." else "the notebook's folder" for f in folders])
    raise CaptureError(
        f"The notebook imports {listing(modules)}, which the kernel ({executable}) does not have and "
        f"{where} (where it looked for local code) {'does' if len(folders) == 1 else 'do'} not hold",
        f"Install {them} there (pip install {' '.join(pip_names(m)[0] for m in modules)}) or pass --python; for "
        f"code of your own, add its folder to sys.path in the notebook.",
    )


def _kernel_local_code(notebook: Path, modules: Iterable[str]) -> dict[str, str]:
    """Where the live kernel found the imported ``modules`` no distribution provides: its real ``sys.path``.

    Top-level name → path of the module or package relative to the notebook's folder; only
    what the kernel has imported from a file outside the interpreter's prefixes.
    """
    import os

    prefixes = tuple(os.path.realpath(p) + os.sep for p in {sys.prefix, sys.base_prefix, sys.exec_prefix})
    found: dict[str, str] = {}
    for top in dict.fromkeys(m.partition(".")[0] for m in modules):
        file = getattr(sys.modules.get(top), "__file__", None)
        if not file or os.path.realpath(file).startswith(prefixes):
            continue
        path = os.path.realpath(file)
        if os.path.basename(path) == "__init__.py":
            path = os.path.dirname(path)
        found[top] = Path(os.path.relpath(path, os.path.realpath(Path(notebook).parent))).as_posix()
    return found


def build_local_wheels(snapshot: EnvironmentSnapshot, dest: Path) -> EnvironmentSnapshot:
    """Build the wheels of the snapshot's local projects into ``dest``; pins then point at them.

    Raises:
        CaptureError: a local project cannot be built; the message names it.
    """
    def built(pins: Iterable[PinnedDistribution]) -> tuple[PinnedDistribution, ...]:
        return tuple(build_local_wheel(p, dest) if p.source == "local-wheel" and p.wheel_path is None else p
                     for p in pins)

    return replace(snapshot, distributions=built(snapshot.distributions),
                   runner_distributions=built(snapshot.runner_distributions))
