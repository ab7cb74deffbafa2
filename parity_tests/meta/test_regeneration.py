"""Regenerating goldens: atomic, refuses silent changes, deterministic.

Determinism is a property of one machine: TF's float32 results can move by
an ulp between CPUs (measured: ``keras_per_gate_basic`` by 1.19e-7 on a CPU
without AVX-512 against the one that wrote the goldens), and each file
records the platform it was made on.  So the tests first regenerate their
cases here (``goldens``), then check that regenerating again changes no byte.
"""

import shutil
import signal
import subprocess
import sys

import numpy as np
import pytest

from lstm_ref.harness.golden import store

pytestmark = pytest.mark.live
CASES = [
    "keras_seed_the_mice_had",
    "keras_per_gate_basic",
    "keras_initial_state",
    "keras_long_sequence",
    "keras_mask_patterns",
    "keras_go_backwards",
]


def generate(directory, *args):
    return [sys.executable, "-m", "lstm_ref.harness.golden", "generate", "--dir", str(directory), *args]


def snapshot(directory):
    """Every file, recordings under platforms/ included (regeneration carries them over)."""
    return {str(p.relative_to(directory)): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}


@pytest.fixture
def copied(tmp_path):
    directory = tmp_path / "fixtures"
    shutil.copytree(store.FIXTURES, directory)
    return directory


@pytest.fixture
def goldens(copied):
    """A copy of the goldens with CASES[:2] regenerated on this machine."""
    directory = copied
    proc = subprocess.run(
        generate(directory, "--only", *CASES[:2], "--force"), capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return directory


def test_regenerating_is_bitwise_identical(goldens):
    before = snapshot(goldens)
    proc = subprocess.run(generate(goldens, "--only", *CASES[:2]), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "identical" in proc.stdout and "outputs changed" not in proc.stdout
    assert snapshot(goldens) == before


def test_changed_goldens_are_refused_without_force(goldens):
    """A golden from 'another TF version' (outputs nudged, re-encoded, manifest
    updated): regeneration prints the diff and refuses; --force replaces it."""
    case = CASES[0]
    path = store.path_of(case, goldens)
    made_here = path.read_bytes()
    old = store.load(case, goldens)
    inputs = old.case.arrays()
    nudged = {k: (v + np.float32(1e-3)).astype(v.dtype) for k, v in old.expected.items()}
    data = store.encode(old.meta, inputs, nudged)
    path.write_bytes(data)
    manifest = store.read_manifest(goldens)["files"]
    manifest[str(path.relative_to(goldens))] = store.sha256(data)
    store.write_manifest(goldens, manifest)
    before = snapshot(goldens)

    proc = subprocess.run(generate(goldens, "--only", case), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1
    assert f"{case}" in proc.stdout and "outputs changed" in proc.stdout and "0.001" in proc.stdout
    assert "refusing to overwrite 1 changed golden(s) without --force" in proc.stderr
    assert snapshot(goldens) == before

    proc = subprocess.run(generate(goldens, "--only", case, "--force"), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert path.read_bytes() == made_here


def test_killed_regeneration_leaves_old_goldens_intact(copied):
    goldens = copied
    before = snapshot(goldens)
    proc = subprocess.Popen(
        generate(goldens, "--force", "--only", *CASES), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    for line in proc.stderr:  # progress lines: kill after the first case is written
        if line.startswith("[1/"):
            proc.send_signal(signal.SIGKILL)
            break
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    assert snapshot(goldens) == before
    for case in CASES:
        store.load(case, goldens)  # still verifies against the manifest
