"""jupyter-containerize: turn a notebook experiment into a reproducible container job."""

from __future__ import annotations

__version__ = "0.1.0"
