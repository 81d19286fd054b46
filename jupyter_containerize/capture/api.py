"""``capture()``: notebook + kernel interpreter → :class:`EnvironmentSnapshot`."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any, Literal

from ..errors import CaptureError
from .distributions import (
    PYPI_SIMPLE,
    Environment,
    all_distributions,
    build_local_wheel,
    check_index_availability,
    closure,
    pin_distribution,
    target_marker_environment,
)
from .gpu import detect_gpu
from .imports import SELF_MODULES, scan_notebook
from .interpreter import kernel_spec, run_probe
from .pipconfig import pip_config_from_probe
from .platforms import drop_platform_only, foreign_platform_warning, platform_only
from .probe import normalize
from .snapshot import EnvironmentSnapshot
from .system import system_packages

KERNEL_DISTRIBUTIONS = ("ipykernel",)
_SELF_DIST = "jupyter-containerize"


def capture(
    notebook: Path,
    python: str | None = None,
    *,
    freeze: Literal["imports", "all"] = "imports",
    in_process: bool = False,
    extra_modules: Iterable[str] = (),
    platform_target: str = "linux/amd64",
    check_index: bool = False,
    wheel_dir: Path | None = None,
) -> EnvironmentSnapshot:
    """Capture what the notebook needs from its kernel's environment, pinned exactly.

    Args:
        notebook: the ``.ipynb`` file.
        python: the kernel's interpreter; ``None``: the notebook kernelspec's (else this one).
        freeze: ``"imports"`` pins the closure of what the notebook uses; ``"all"`` every distribution.
        in_process: probe this interpreter directly and add the modules it has imported
            (``sys.modules``), as the magics do from inside the live kernel.
        extra_modules: more module names to treat as imported.
        platform_target: OS/CPU of the image (markers and platform-only packages follow it).
        check_index: ask the package index whether each pinned version exists (network).
        wheel_dir: build wheels of local projects there now; ``None`` defers that to render
            (:func:`build_local_wheels`).

    Raises:
        NotebookError: the notebook cannot be read.
        InterpreterError: the kernelspec is unknown or the interpreter can't run.
        CaptureError: the environment can't be captured faithfully (e.g. a local project won't build).
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
    freeze: Literal["imports", "all"] = "imports",
    extra_modules: Iterable[str] = (),
    dynamic_modules: Iterable[str] = (),
    platform_target: str = "linux/amd64",
    check_index: bool = False,
    wheel_dir: Path | None = None,
) -> EnvironmentSnapshot:
    """The snapshot of ``notebook`` in the environment a probe described (see :mod:`.probe`).

    ``dynamic_modules`` are modules the live kernel imported; those that belong only to
    jupyter-containerize's own dependencies are ignored, unknown ones silently.
    """
    if freeze not in ("imports", "all"):
        raise CaptureError(f"Unknown freeze mode {freeze!r}.", "Use 'imports' or 'all'.")
    env = Environment(probe)
    warnings: list[str] = []
    nb = scan_notebook(notebook, env.stdlib)
    warnings += nb.warnings
    wanted = list(nb.modules) + [m for m in extra_modules if m.partition(".")[0] not in env.stdlib]
    roots: dict[str, None] = {}
    imports: set[str] = set()
    imported: set[str] = set()
    for module in wanted:
        name, keys = env.resolve(module, [n for n in nb.from_names if n.startswith(module + ".")])
        if not keys:
            warnings.append(f"Module {module} is imported but not installed in {probe['executable']}; "
                            "nothing was pinned for it.")
            continue
        imports.add(name if "." in name else module)
        imported.add(module)
        roots.update(dict.fromkeys(env.dists[k].name for k in keys))
    marker_env = target_marker_environment(probe, platform_target)
    dynamic = list(dynamic_modules)
    if dynamic:
        tool = closure(env, [_SELF_DIST], marker_env)[0] if _SELF_DIST in env.dists else {}
        for module in dynamic:
            for key in env.distributions_of(module):
                if key not in tool and key != _SELF_DIST:
                    roots.setdefault(env.dists[key].name, None)
    from packaging.requirements import InvalidRequirement, Requirement

    for text in nb.requirements:
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
    foreign = foreign_platform_warning(probe, platform_target)
    if foreign:
        warnings.append(foreign)
    kept, platform_warnings = drop_platform_only(roots, platform_target)
    warnings += platform_warnings
    found, missing = closure(env, kept, marker_env)
    for key in sorted(found):
        if platform_target.startswith("linux") and platform_only(key):
            del found[key]
    if missing:
        warnings.append(f"Required on {platform_target} but not installed in {probe['executable']}: "
                        f"{', '.join(missing)}; not pinned (the image build resolves them).")
    dists = [env.dists[k] for k in sorted(found)]
    pins = []
    for dist in dists:
        pin, warning = pin_distribution(dist, wheel_dir)
        pins.append(pin)
        if warning:
            warnings.append(warning)
    packages, lib_warnings = system_packages(dists, str(probe.get("machine", "x86_64")))
    warnings += lib_warnings
    pip_config, pip_warnings = pip_config_from_probe(probe.get("pip_config", {}))
    warnings += pip_warnings
    if check_index:
        index = pip_config.secret_values.get("JC_INDEX_URL") or pip_config.index_url or PYPI_SIMPLE
        try:
            absent = check_index_availability(pins, index, cert=pip_config.cert_file)
        except CaptureError as exc:
            warnings.append(f"{exc.message} Versions were not checked.")
        else:
            if absent:
                warnings.append(f"Not on the package index ({pip_config.index_url or PYPI_SIMPLE}), so the image "
                                f"build will fail for: {', '.join(absent)}. Install index versions of them "
                                "in the kernel, or make those builds available on an index.")
    kernel = env.get("ipykernel")
    return EnvironmentSnapshot(
        notebook=notebook,
        python_version=str(probe["python_version"]),
        python_executable=str(probe["executable"]),
        platform=str(probe["platform"]),
        machine=str(probe["machine"]),
        imports=tuple(sorted(imports)),
        distributions=tuple(sorted(pins, key=lambda p: normalize(p.name))),
        explicit_requirements=nb.requirements,
        local_modules=nb.local_modules,
        system_packages=tuple(packages),
        gpu=detect_gpu(dists),
        pip_config=pip_config,
        ipykernel_version=kernel.version if kernel else None,
        warnings=tuple(dict.fromkeys(warnings)),
        modules=tuple(sorted(imported)),
    )


def build_local_wheels(snapshot: EnvironmentSnapshot, dest: Path) -> EnvironmentSnapshot:
    """Build the wheels of the snapshot's local projects into ``dest``; pins then point at them.

    Raises:
        CaptureError: a local project cannot be built; the message names it.
    """
    pins = tuple(
        build_local_wheel(p, dest) if p.source == "local-wheel" and p.wheel_path is None else p
        for p in snapshot.distributions
    )
    return replace(snapshot, distributions=pins)
