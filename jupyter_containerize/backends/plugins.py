"""Backends by name: the plugins of the entry-point group ``jupyter_containerize.backends``.

Docker, Slurm and Kubernetes register in this project's ``pyproject.toml`` exactly as a
third-party package registers its own::

    [project.entry-points."jupyter_containerize.backends"]
    mine = "my_package.backend:MyBackend"

The entry point names a :class:`.base.Backend` class (or any callable that returns one).
When it has a ``from_config`` classmethod it gets the job manager's :class:`.config.Config`;
otherwise it is called without arguments. Entry points are read from the installed
distributions, so a package's backends appear once it is installed (``pip install -e .``).
"""

from __future__ import annotations

from importlib.metadata import EntryPoint, entry_points

from ..errors import BackendError, ContainerizeError, listing
from .base import Backend
from .config import Config

GROUP = "jupyter_containerize.backends"

# What the job manager uses of a backend: the protocol's attributes and methods.
MEMBERS = tuple(sorted({*Backend.__annotations__,
                        *(k for k, v in vars(Backend).items() if callable(v) and not k.startswith("_"))}))


def backend_names() -> list[str]:
    """The names of every registered backend, sorted."""
    return sorted({ep.name for ep in entry_points(group=GROUP)})


def load_backend(name: str, config: Config | None = None) -> Backend:
    """A new instance of the backend registered as ``name``, built from ``config`` (default: the environment's).

    Raises:
        BackendError: no backend (or more than one) is registered as ``name``, or it cannot be loaded or
            lacks a member of the protocol.
    """
    found: dict[str, EntryPoint] = {ep.value: ep for ep in entry_points(group=GROUP) if ep.name == name}
    if not found:
        names = backend_names()
        raise BackendError(f"No backend is called {name!r}; the registered backends are {listing(names)}." if names
                           else f"No backend is called {name!r}, and none is registered (reinstall "
                                "jupyter-containerize, e.g. pip install -e ., to register its own).")
    if len(found) > 1:
        raise BackendError(f"More than one package registers the backend {name!r} ({listing(sorted(found))})",
                           "Uninstall all but one of them.")
    entry = next(iter(found.values()))
    try:
        target = entry.load()
        make = getattr(target, "from_config", None)
        backend = make(config or Config.from_env()) if callable(make) else target()
    except ContainerizeError:
        raise
    except Exception as e:  # noqa: BLE001 - a broken plugin is the user's to fix, in one sentence
        raise BackendError(f"The backend {name!r} ({entry.value}) cannot be loaded: {type(e).__name__}: {e}",
                           "Reinstall the package that provides it.") from None
    missing = [m for m in MEMBERS if not hasattr(backend, m)]
    if missing:
        raise BackendError(f"The backend {name!r} ({entry.value}) lacks {listing(missing)}",
                           "Subclass jupyter_containerize.backends.base.Backend for the defaults of its capabilities.")
    return backend  # type: ignore[no-any-return]
