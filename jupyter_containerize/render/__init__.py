"""Render: EnvironmentSnapshot + JobSpec → a deterministic build context.

``render_dockerfile`` gives the Dockerfile text alone; ``render_context`` writes the
whole context (Dockerfile, locks, ``.dockerignore``, notebook, runner) to a folder
and returns a :class:`BuildContext` whose content hash is the image tag.
"""

from __future__ import annotations

from .context import BuildContext, ContextError, render_context
from .dockerfile import render_dockerfile

__all__ = ["BuildContext", "ContextError", "render_context", "render_dockerfile"]
