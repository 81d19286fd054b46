"""Capture: the kernel's environment as an :class:`EnvironmentSnapshot`.

``capture(notebook)`` probes the kernel's interpreter (stdlib-only :mod:`.probe`, run in
that interpreter or in-process), reads the notebook's imports (:mod:`.imports`), maps
them to installed distributions and pins their closure (:mod:`.distributions`), resolves what
the image's platform needs and the kernel lacks (:mod:`.resolve`), carries the kernel's
wheels that no index serves into the context (:mod:`.wheels`), and adds
system libraries (:mod:`.system`), CUDA facts (:mod:`.gpu`) and pip settings
(:mod:`.pipconfig`).
"""

from __future__ import annotations

from .api import build_local_wheels, capture, snapshot_from_probe
from .distributions import build_local_wheel, check_index_availability, pin_closure
from .interpreter import kernel_python
from .snapshot import EnvironmentSnapshot, GpuInfo, PinnedDistribution, PipConfig

__all__ = [
    "EnvironmentSnapshot",
    "GpuInfo",
    "PinnedDistribution",
    "PipConfig",
    "build_local_wheel",
    "build_local_wheels",
    "capture",
    "check_index_availability",
    "kernel_python",
    "pin_closure",
    "snapshot_from_probe",
]
