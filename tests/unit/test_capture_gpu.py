"""CUDA detection from installed versions (values as the probe reports them)."""

from __future__ import annotations

from pathlib import Path

from jupyter_containerize.capture.distributions import InstalledDistribution
from jupyter_containerize.capture.gpu import detect_gpu


def _d(name: str, version: str) -> InstalledDistribution:
    return InstalledDistribution(name, version, (), Path("/x"))


def test_cpu_only_is_empty() -> None:
    assert detect_gpu([_d("numpy", "2.0.0"), _d("torch", "2.4.0")]).cuda_version is None


def test_torch_local_cuda_build_needs_pytorch_index_but_keeps_slim_base() -> None:
    gpu = detect_gpu([_d("torch", "2.4.0+cu121"), _d("torchvision", "0.19.0+cu121")])
    assert gpu.frameworks == ("torch",)
    assert gpu.cuda_version == "12.1"
    assert gpu.extra_index_urls == ("https://download.pytorch.org/whl/cu121",)
    assert not gpu.needs_system_cuda and gpu.cuda_base_image is None


def test_torch_cpu_build_needs_cpu_index() -> None:
    gpu = detect_gpu([_d("torch", "2.4.0+cpu")])
    assert gpu.extra_index_urls == ("https://download.pytorch.org/whl/cpu",) and gpu.cuda_version is None


def test_pypi_torch_with_nvidia_wheels() -> None:
    gpu = detect_gpu([_d("torch", "2.4.0"), _d("nvidia-cuda-runtime-cu12", "12.1.105"),
                      _d("nvidia-cudnn-cu12", "9.1.0.70")])
    assert gpu.frameworks == ("torch",) and gpu.cuda_version == "12.1" and not gpu.needs_system_cuda


def test_cupy_without_nvidia_wheels_needs_system_cuda() -> None:
    gpu = detect_gpu([_d("cupy-cuda12x", "13.3.0")])
    assert gpu.frameworks == ("cupy",) and gpu.needs_system_cuda
    assert gpu.cuda_base_image is not None and gpu.cuda_base_image.startswith("nvidia/cuda:12.")
    assert "cudnn" in gpu.cuda_base_image and "runtime" in gpu.cuda_base_image
    assert not detect_gpu([_d("cupy-cuda12x", "13.3.0"), _d("nvidia-cuda-runtime-cu12", "12.4.127")]).needs_system_cuda


def test_jax_and_tensorflow() -> None:
    assert detect_gpu([_d("jax", "0.4.30"), _d("jax-cuda12-plugin", "0.4.30"),
                       _d("nvidia-cuda-runtime-cu12", "12.5.82")]).cuda_version == "12.5"
    local = detect_gpu([_d("jaxlib", "0.4.20+cuda12.cudnn89")])
    assert local.needs_system_cuda and local.frameworks == ("jax",)
    tf = detect_gpu([_d("tensorflow", "2.17.0"), _d("nvidia-cuda-runtime-cu12", "12.3.101")])
    assert tf.frameworks == ("tensorflow",) and tf.cuda_version == "12.3" and not tf.needs_system_cuda
