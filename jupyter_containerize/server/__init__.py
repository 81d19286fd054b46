"""jupyter_server extension: REST API under ``/containerize/`` for the JupyterLab sidebar."""

from __future__ import annotations

from .app import ContainerizeApp

__all__ = ["ContainerizeApp"]
