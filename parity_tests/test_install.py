"""The pip user's path: the wheel, installed outside the clone into a fresh
venv with one framework (ONNX Runtime, the smallest), runs ``doctor`` and
``check`` there: its oracle takes that venv's interpreter, with no Makefile,
no repo venv and no ``LSTM_PARITY_*`` variable.

Also: the Makefile's per-oracle targets and the user-facing extras stay in
step with ``ORACLES``.
"""

import os
import re
import shutil
import subprocess
import sys
import textwrap
import tomllib
import zipfile
from pathlib import Path

import pytest

from lstm_ref.harness.oracles.client import ORACLES

ROOT = Path(__file__).resolve().parents[1]

# Writes a one-layer ONNX LSTM (time-major, opset 14) with seeded weights to argv[1].
MODEL = textwrap.dedent("""
    import sys
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper, save
    rng = np.random.default_rng(0)
    units, features = 3, 2
    W = rng.standard_normal((1, 4 * units, features)).astype(np.float32) * 0.5
    R = rng.standard_normal((1, 4 * units, units)).astype(np.float32) * 0.5
    B = rng.standard_normal((1, 8 * units)).astype(np.float32) * 0.1
    node = helper.make_node("LSTM", ["X", "W", "R", "B"], ["Y", "Y_h", "Y_c"], hidden_size=units, name="lstm")
    graph = helper.make_graph(
        [node], "tiny", [helper.make_tensor_value_info("X", TensorProto.FLOAT, ["time", "batch", features])],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in ("Y", "Y_h", "Y_c")],
        initializer=[numpy_helper.from_array(a, n) for a, n in ((W, "W"), (R, "R"), (B, "B"))])
    save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)]), sys.argv[1])
""")

# What pip says when it cannot reach a registry (or the registry lacks the package).
UNREACHABLE = re.compile(
    r"No matching distribution found|Could not find a version|NewConnectionError|"
    r"Temporary failure in name resolution|Network is unreachable|ConnectTimeout|"
    r"Max retries exceeded",
    re.I,
)


def clean_env(home):
    """The machine's environment less everything that points at the clone."""
    drop = ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME", "PYTHONSTARTUP")
    env = {k: v for k, v in os.environ.items() if k not in drop and not k.startswith("LSTM_PARITY_")}
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep) if not p.startswith(str(ROOT)))
    env["TMPDIR"] = str(home)
    return env


def run(cmd, env, cwd, timeout=120):
    return subprocess.run([str(c) for c in cmd], env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout)


@pytest.mark.live  # builds a wheel with pip and installs a framework: the repo's venvs and the registry
def test_the_wheel_runs_check_in_a_fresh_venv_with_one_framework(tmp_path):
    src, wheels, venv, work = (tmp_path / n for n in ("src", "wheels", "venv", "work"))
    work.mkdir()
    # A copy of what the wheel is built from: setuptools' build/ stays out of the clone.
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    shutil.copytree(ROOT / "lstm_ref", src / "lstm_ref", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    env = clean_env(tmp_path)
    built = run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", wheels, src], env, work
    )
    assert built.returncode == 0, built.stderr[-3000:]
    (wheel,) = wheels.glob("lstm_parity-*.whl")

    made = run([sys.executable, "-m", "venv", venv], env, work)
    assert made.returncode == 0, made.stderr[-3000:]
    python = venv / "bin" / "python"
    installed = run(
        [python, "-m", "pip", "install", "-q", "--disable-pip-version-check", f"{wheel}[onnx]"], env, work, timeout=300
    )
    if installed.returncode and UNREACHABLE.search(installed.stderr):
        pytest.skip(f"the package registry cannot be reached to install onnxruntime: {installed.stderr[-500:]}")
    assert installed.returncode == 0, installed.stderr[-3000:]

    lstm_ref = venv / "bin" / "lstm-ref"
    doctor = run([lstm_ref, "doctor", "--kind", "onnx"], env, work)
    assert doctor.returncode == 0, doctor.stdout + doctor.stderr
    assert re.search(
        rf"^ok +onnxruntime +onnx\.LSTM\n +{re.escape(str(python))} \(this interpreter\): onnxruntime ",
        doctor.stdout,
        re.M,
    ), doctor.stdout
    # torch is not there: its row says how to get it, and the exit code says it cannot run.
    doctor = run([lstm_ref, "doctor", "--kind", "torch", "--kind", "onnx"], env, work)
    assert doctor.returncode == 1, doctor.stdout + doctor.stderr
    assert "oracle 'torch' needs torch: pip install 'lstm-parity[torch]' (or torch)" in doctor.stdout

    assert run([python, "-c", MODEL, work / "tiny.onnx"], env, work).returncode == 0
    checked = run([lstm_ref, "check", "tiny.onnx", "--no-progress"], env, work)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert re.search(r"^PASS: 1/1 within tolerance", checked.stdout, re.M), checked.stdout
    # A framework that is not installed: exit 2 and the pip install that brings it, not "run `make venvs`".
    with zipfile.ZipFile(work / "tiny.pt", "w") as archive:  # what torch.save writes, as far as model_format looks
        archive.writestr("tiny/data.pkl", b"\x80\x02}q\x00.")
    refused = run([lstm_ref, "check", "tiny.pt"], env, work)
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert "oracle 'torch' needs torch: pip install 'lstm-parity[torch]' (or torch)" in refused.stderr


def _makefile_targets():
    return set(re.findall(r"^([a-z][a-z-]*):", (ROOT / "Makefile").read_text(), re.M))


def test_every_oracle_with_a_venv_has_a_make_target_and_says_so():
    targets = _makefile_targets()
    for spec in ORACLES.values():
        assert spec.make_target() in targets, spec.name
        assert f"`make {spec.make_target()}`" in spec.unavailable()


def test_every_oracle_has_a_user_extra_that_brings_its_framework():
    """`pip install 'lstm-parity[EXTRA]'` installs the modules the oracle
    needs (tfa apart: it needs TF <= 2.15, so only a venv of its own), and
    [tensorflow] brings no second distribution of TensorFlow."""
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    module_of = {
        "tensorflow": "tensorflow",
        "tf_keras": "tf_keras",
        "torch": "torch",
        "onnxruntime": "onnxruntime",
        "onnx": "onnx",
        "ai-edge-litert": "ai_edge_litert",
        "keras": "keras",
        "jax": "jax",
        "flax": "flax",
    }
    brings = {
        name: {module_of.get(re.split(r"[<>=!~\[ ;]", r, maxsplit=1)[0]) for r in reqs} for name, reqs in extras.items()
    }
    brings["tensorflow"].add("keras")  # TF >= 2.16 depends on Keras 3
    for spec in ORACLES.values():
        if spec.name == "tfa":
            assert not spec.extra
            continue
        assert set(spec.needs) <= brings[spec.extra], (spec.name, spec.extra)
        assert spec.extra in extras["all"][0]
    assert not any(r.startswith("tensorflow-cpu") for r in extras["tensorflow"])
