"""Where a number came from: framework versions, CPU, oneDNN, BLAS."""

import os
import platform
import sys

import numpy as np

from lstm_ref.platform import detect

# The framework versions a worker's hello reports, and what a reader calls
# each (the report's labels; a recording must match the goldens on these).
FRAMEWORKS = {
    "tensorflow": "TF",
    "keras": "Keras",
    "tf_keras": "tf_keras",
    "tensorflow_addons": "tfa",
    "torch": "torch",
    "onnxruntime": "onnxruntime",
    "ai_edge_litert": "LiteRT",
    "jax": "JAX",
    "flax": "Flax",
}

# The versions each oracle's goldens and tolerances were measured on: the
# committed goldens' provenance (LiteRT, which has no goldens: its pin,
# pyproject.toml's oracle-litert).  `lstm-ref doctor` notes a framework that
# differs; parity_tests/test_doctor.py keeps this equal to both.
_TF_KERAS = {"tensorflow": "2.21.0", "tf_keras": "2.21.0"}
MEASURED = {
    "keras3": {"tensorflow": "2.21.0", "keras": "3.15.1"},
    "tf1": _TF_KERAS,
    "tf_keras": _TF_KERAS,
    "contrib": _TF_KERAS,
    "tfa": {"tensorflow": "2.15.1", "tensorflow_addons": "0.23.0", "keras": "2.15.0"},
    "torch": {"torch": "2.13.0+cpu"},
    "onnxruntime": {"onnxruntime": "1.32.0"},
    "litert": {"ai_edge_litert": "2.3.0"},
    "keras3_jax": {"jax": "0.10.2", "keras": "3.15.1"},
    "keras3_torch": {"torch": "2.13.0+cpu", "keras": "3.15.1"},
    "flax": {"jax": "0.10.2", "flax": "0.12.8"},
}


def release(version: str) -> str:
    """A version without its local label: torch's "2.13.0+cpu" is "2.13.0"."""
    return str(version).split("+", 1)[0]


def differs(found: str, measured: str) -> bool:
    """Whether ``found`` is another release than ``measured`` (a CPU or CUDA
    build of one torch release is the same release)."""
    return release(found) != release(measured)


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cpu_flags() -> list:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    wanted = ("avx", "fma", "sse4", "amx", "f16c", "asimd", "fp16", "sve")
                    return sorted(x for x in line.split(":", 1)[1].split() if x.startswith(wanted))
    except OSError:
        pass
    return []


def onednn_setting() -> str:
    # TF >= 2.9 enables oneDNN by default on x86 Linux; TF_ENABLE_ONEDNN_OPTS overrides.
    return os.environ.get("TF_ENABLE_ONEDNN_OPTS", "default (on)")


def numpy_blas() -> str:
    try:
        config = np.show_config(mode="dicts")
        blas = config["Build Dependencies"]["blas"]
        return f"{blas.get('name')} {blas.get('version', '')}".strip()
    except Exception:  # noqa: BLE001 - older NumPy has no dict mode
        return "unknown"


def base() -> dict:

    return {
        "platform_profile": detect().name,  # this process's CPU and TF_ENABLE_ONEDNN_OPTS
        "cpu_flags": cpu_flags(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "platform": platform.platform(),
        "cpu": cpu_model(),
        "onednn": onednn_setting(),
        "executable": os.path.basename(sys.executable),
    }
