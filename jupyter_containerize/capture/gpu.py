"""CUDA builds of torch / tensorflow / jax / cupy and the ``nvidia-*`` wheels.

Wheels that bundle CUDA (torch ``+cuXYZ``, ``nvidia-*-cuXX``) keep the slim Python base;
only packages that load a system CUDA (cupy without ``nvidia-*`` wheels, jaxlib
``+cudaXX`` local builds) ask for an ``nvidia/cuda:*-cudnn-runtime-*`` base.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from .distributions import InstalledDistribution
from .snapshot import GpuInfo

PYTORCH_INDEX = "https://download.pytorch.org/whl/{}"
_TORCH_FAMILY = frozenset({"torch", "torchvision", "torchaudio", "torchtext", "torchdata", "pytorch-triton"})
_LOCAL_CU = re.compile(r"\+cu(\d+?)(\d)$")  # +cu121 -> 12.1, +cu118 -> 11.8
_LOCAL_OTHER = re.compile(r"\+(cpu|rocm[\d.]+|xpu)$")
_NVIDIA_WHEEL = re.compile(r"^nvidia-[a-z0-9-]+-cu(\d+)$")
_CUPY = re.compile(r"^cupy-cuda(\d+)x?$")
_JAX_PLUGIN = re.compile(r"^jax-cuda(\d+)-(?:plugin|pjrt)$")
_JAXLIB_LOCAL = re.compile(r"^cuda(\d+)")
# Newest runtime image tag per CUDA major.minor (nvidia/cuda tags need X.Y.Z).
_CUDA_TAGS = {
    "11.8": "11.8.0-cudnn8-runtime", "12.0": "12.0.1-cudnn8-runtime", "12.1": "12.1.1-cudnn8-runtime",
    "12.2": "12.2.2-cudnn8-runtime", "12.3": "12.3.2-cudnn9-runtime", "12.4": "12.4.1-cudnn-runtime",
    "12.5": "12.5.1-cudnn-runtime", "12.6": "12.6.3-cudnn-runtime", "12.8": "12.8.1-cudnn-runtime",
    "12.9": "12.9.1-cudnn-runtime", "12": "12.6.3-cudnn-runtime", "11": "11.8.0-cudnn8-runtime",
}


def cuda_base_image(cuda_version: str) -> str:
    """The ``nvidia/cuda`` runtime image (with cuDNN, Ubuntu 22.04) for a CUDA version."""
    tag = _CUDA_TAGS.get(cuda_version) or f"{cuda_version}.0-cudnn-runtime"
    return f"nvidia/cuda:{tag}-ubuntu22.04"


def _nvidia_runtime_version(dists: dict[str, InstalledDistribution]) -> str | None:
    runtime = next((d for k, d in dists.items() if k.startswith("nvidia-cuda-runtime-cu")), None)
    if runtime is None:
        return None
    parts = runtime.version.split(".")
    return ".".join(parts[:2]) if len(parts) >= 2 else parts[0]


def detect_gpu(closure: Iterable[InstalledDistribution]) -> GpuInfo:
    """CUDA facts of the closure's distributions (an empty ``GpuInfo`` for CPU-only sets)."""
    dists = {d.key: d for d in closure}
    frameworks: list[str] = []
    cuda: str | None = None
    indexes: list[str] = []
    system_cuda = False
    for key, dist in sorted(dists.items()):
        local = dist.version.partition("+")[2]
        if key in _TORCH_FAMILY and local:
            m = _LOCAL_CU.search(dist.version)
            if m:
                cuda = cuda or f"{m.group(1)}.{m.group(2)}"
                indexes.append(PYTORCH_INDEX.format("cu" + m.group(1) + m.group(2)))
            elif _LOCAL_OTHER.search(dist.version):
                indexes.append(PYTORCH_INDEX.format(local))
            if key == "torch" and m:
                frameworks.append("torch")
        elif key == "torch" and any(k.startswith("nvidia-") for k in dists):
            frameworks.append("torch")  # PyPI's default Linux torch wheels use nvidia-* CUDA wheels
        elif key in ("tensorflow", "tf-nightly") and any(k.startswith("nvidia-") for k in dists):
            frameworks.append("tensorflow")
        elif m_cupy := _CUPY.match(key):
            frameworks.append("cupy")
            major = m_cupy.group(1)
            cuda = cuda or (major if len(major) <= 2 else f"{major[:-1]}.{major[-1]}")
            system_cuda = system_cuda or _nvidia_runtime_version(dists) is None
        elif m_jax := _JAX_PLUGIN.match(key):
            frameworks.append("jax")
            cuda = cuda or m_jax.group(1)
        elif key == "jaxlib" and (m_lib := _JAXLIB_LOCAL.search(local)):
            frameworks.append("jax")
            cuda = cuda or m_lib.group(1)
            system_cuda = system_cuda or _nvidia_runtime_version(dists) is None
    nvidia = _nvidia_runtime_version(dists)
    if nvidia and (cuda is None or "." not in cuda):
        cuda = nvidia
    elif cuda is None and any(_NVIDIA_WHEEL.match(k) for k in dists):
        cuda = next(m.group(1) for k in sorted(dists) if (m := _NVIDIA_WHEEL.match(k)))
    if not frameworks and cuda is None and not indexes:
        return GpuInfo()
    return GpuInfo(
        frameworks=tuple(dict.fromkeys(frameworks)),
        cuda_version=cuda,
        extra_index_urls=tuple(dict.fromkeys(indexes)),
        needs_system_cuda=system_cuda,
        cuda_base_image=cuda_base_image(cuda) if system_cuda and cuda else None,
    )
