"""jupyter-containerize: turn a notebook experiment into a reproducible container job."""

from __future__ import annotations

from typing import Any

from .metrics import log_metric

__version__ = "0.1.0"
__all__ = ["__version__", "load_ipython_extension", "log_metric", "unload_ipython_extension"]


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext jupyter_containerize``: register ``%containerize`` and ``%%containerize``."""
    from .magics import load

    load(ipython)


def unload_ipython_extension(ipython: Any) -> None:
    """``%unload_ext jupyter_containerize``."""
    from .magics import unload

    unload(ipython)


def _jupyter_server_extension_points() -> list[dict[str, Any]]:
    """The jupyter_server extension (REST API for the JupyterLab sidebar)."""
    from .server import ContainerizeApp

    return [{"module": "jupyter_containerize.server", "app": ContainerizeApp}]


def _jupyter_labextension_paths() -> list[dict[str, str]]:
    """The prebuilt JupyterLab extension shipped in the wheel."""
    return [{"src": "labextension", "dest": "jupyter-containerize"}]
