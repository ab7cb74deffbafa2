"""Replays of what TF (and PyTorch, ONNX Runtime) computed on other CPUs.

Each folder under ``fixtures/platforms/`` is a recording
(``lstm_ref/harness/platforms.py``); the reference, under the recording's
platform profile, must meet the same criteria there as live: the tolerance
and the one-step bitwise share of every case (the one comparison), and the
float16 activations' ulp bounds of that profile.  NumPy only: these run in
``pytest -m "not live"`` on any machine, so a claim proved on one CPU is
kept on every other.
"""

import json
import os
import shutil
import subprocess
import sys
from dataclasses import replace

import pytest

from lstm_ref import platform
from lstm_ref.errors import FixtureError
from lstm_ref.harness import platforms
from lstm_ref.harness.golden import store
from lstm_ref.harness.replay import replay, replay_activation, replay_case

RECORDINGS = {path.name: platforms.load(path) for path in platforms.recordings()}
CASES = [(name, case) for name, rec in RECORDINGS.items() for case in rec.case_names()]
TABLES = [(name, key) for name, rec in RECORDINGS.items() for key in sorted(rec.activations())]


def test_the_recordings_cover_both_x86_profiles():
    assert {str(r.profile) for r in RECORDINGS.values()} >= {"x86-eigen", "x86-onednn-fp16"}, RECORDINGS


@pytest.mark.parametrize("name", sorted(RECORDINGS))
def test_recording_is_of_the_suites_framework_versions(name):
    platforms.check_versions(RECORDINGS[name], platforms.golden_versions())


@pytest.mark.parametrize("name,case", CASES, ids=[f"{n}/{c}" for n, c in CASES])
def test_recorded_case(name, case):
    """Tolerance and one-step claim, under the recording's profile."""
    passed, detail, _ = replay_case(RECORDINGS[name], case)
    assert passed, detail


@pytest.mark.parametrize("name,key", TABLES, ids=[f"{n}/{'|'.join(map(str, k))}" for n, k in TABLES])
def test_recorded_float16_activation(name, key):
    """Every finite float16: the profile's measured ulp bounds (bitwise, mostly)."""
    recording = RECORDINGS[name]
    passed, detail, _ = replay_activation(recording, *key, recording.activations()[key])
    assert passed, detail


@pytest.mark.parametrize("name", sorted(RECORDINGS))
def test_a_recording_fails_under_any_other_profile(name):
    """The replay can fail: judged as if made on the other x86 profile,
    each recording breaks the float16 claims (softmax, the contrib cell's
    fused bias).  This is what the suite did on a Xeon before profiles."""
    recording = RECORDINGS[name]
    for other in ("x86-eigen", "x86-onednn-fp16"):
        if other == str(recording.profile):
            continue
        wrong = replace(recording, cpu={**recording.cpu, "platform_profile": other})
        failed = [row["name"] for row in replay(wrong) if not row["passed"]]
        assert any("softmax" in n for n in failed), failed
        if str(recording.profile) == "x86-onednn-fp16":
            assert "sweep_contrib_10_float16_none" in failed, failed


def test_golden_drift_is_measured_not_failed():
    """Committed goldens (AMD EPYC) against each recording's run of the same
    case: drift exists (so the measure can see it), and the reference passes
    the recording's outputs (test_recorded_case)."""
    drift = {name: platforms.golden_drift(rec) for name, rec in RECORDINGS.items()}
    for name, per_kind in drift.items():
        assert sum(s["cases"] for s in per_kind.values()) == len(store.case_ids()), name
        assert any(s["differ"] for s in per_kind.values()), name


def test_an_arm_recording_needs_no_code_change(tmp_path):
    """A recording whose cpu.json says aarch64 takes the ``aarch64`` profile
    (Eigen's x86 float16 semantics as the hypothesis) and replays as is.
    Its numbers here are an x86 machine's: this proves the mechanism only."""
    source = RECORDINGS["xeon-onednn-off"].directory
    arm = tmp_path / "graviton"
    shutil.copytree(source, arm)
    cpu = json.loads((arm / "cpu.json").read_text())
    cpu.update(cpu="Neoverse-V1", flags=["asimd", "asimdhp", "fphp", "sve"], machine="aarch64",
               platform="Linux-6.1-aarch64-with-glibc2.36")
    cpu.pop("platform_profile")
    (arm / "cpu.json").write_text(json.dumps(cpu))
    platforms.seal(arm)
    recording = platforms.load(arm)
    assert recording.profile is platform.PROFILES["aarch64"]
    assert all(row["passed"] for row in replay(recording))


def test_replays_hold_with_numpys_avx2_kernels():
    """The reference's own transcendentals come from NumPy's SIMD dispatch:
    with its AVX-512 kernels off (as on an AVX2 CPU), float32 log1p/expm1
    and float64 exp give other bits (measured on the Xeon that recorded
    avx512fp16-xeon).  Every recording must replay there too.  On a CPU
    without AVX-512 this is the plain replay again."""
    from numpy._core._multiarray_umath import __cpu_dispatch__, __cpu_features__

    avx512 = [f for f in ("X86_V4", "AVX512_ICL", "AVX512_SPR") if f in __cpu_dispatch__ and __cpu_features__.get(f)]
    env = {**os.environ, "NPY_DISABLE_CPU_FEATURES": " ".join(avx512)}
    for recording in RECORDINGS.values():
        proc = subprocess.run([sys.executable, "-m", "lstm_ref", "replay", str(recording.directory)],
                              capture_output=True, text=True, env=env)
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
        assert f"{len(recording.case_names()) + len(recording.activations())}/" in proc.stdout, proc.stdout


# -- bad input ------------------------------------------------------------------


def test_unknown_profile_lists_the_known_ones(monkeypatch):
    with pytest.raises(ValueError, match="unknown platform profile 'sparc'; known: x86-eigen, x86-onednn-fp16"):
        platform.get("sparc")
    monkeypatch.setenv(platform.ENV_VAR, "sparc")
    with pytest.raises(platform.PlatformError, match=f"{platform.ENV_VAR}: unknown platform profile"):
        platform.current()


@pytest.mark.parametrize(
    "command",
    [
        ["check", "model.keras"],
        ["report", "--no-live"],
        ["diagnose", "--kind", "keras.layers.LSTM", "--config", "{}", "--weights", "w.npz"],
    ],
)
def test_unknown_profile_on_the_command_line(command, tmp_path):
    proc = subprocess.run([sys.executable, "-m", "lstm_ref", *command, "--platform", "sparc"],
                          capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert "--platform: unknown platform profile 'sparc'; known: x86-eigen" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_another_framework_version_is_refused():
    recording = RECORDINGS["avx512fp16-xeon"]
    cpu = json.loads(json.dumps(recording.cpu))
    cpu["oracles"]["keras.layers.LSTM"]["tensorflow"] = "2.20.0"
    with pytest.raises(platform.PlatformError, match="ran tensorflow 2.20.0, but the suite's oracles .* "
                                                     "are tensorflow 2.21.0"):
        platforms.check_versions(replace(recording, cpu=cpu), platforms.golden_versions())


@pytest.mark.parametrize("damage", ["tamper", "truncate", "remove"])
def test_a_damaged_recording_names_the_file(tmp_path, damage):
    copy = tmp_path / "rec"
    shutil.copytree(RECORDINGS["avx512fp16-xeon"].directory, copy)
    victim = copy / "sweep_contrib_10_float16_none.npz"
    data = victim.read_bytes()
    if damage == "tamper":
        victim.write_bytes(data[:100] + bytes([data[100] ^ 1]) + data[101:])
    elif damage == "truncate":
        victim.write_bytes(data[: len(data) // 2])
    else:
        victim.unlink()
    with pytest.raises(FixtureError, match="sweep_contrib_10_float16_none.npz"):
        platforms.load(copy)


def test_legacy_goldens_are_the_amd_epyc_ones():
    """Goldens without a recorded profile are taken as x86-eigen because
    every one came from an AMD EPYC (no AMD CPU has AVX512-FP16)."""
    for case_id in store.case_ids():
        prov = store.load(case_id).meta["provenance"]
        if "platform_profile" not in prov:
            assert prov["cpu"].startswith("AMD EPYC"), (case_id, prov)
            assert str(platform.profile_of_provenance(prov)) == "x86-eigen"


@pytest.mark.parametrize("flags,onednn,machine,expected", [
    (["avx2", "fma", "f16c"], "default (on)", "x86_64", "x86-eigen"),
    (["avx512f", "avx512bw", "avx512_bf16"], "default (on)", "x86_64", "x86-eigen"),  # Zen 4: no FP16
    (["avx512bw", "avx512_fp16"], "default (on)", "x86_64", "x86-onednn-fp16"),
    (["avx512bw", "avx512_fp16"], "0", "x86_64", "x86-eigen"),
    (["avx512bw", "amx_fp16"], "1", "x86_64", "x86-onednn-fp16"),
    (["avx2", "avx_ne_convert"], "default (on)", "x86_64", "x86-onednn-fp16"),
    (["asimd", "asimdhp"], "default (on)", "aarch64", "aarch64"),
])
def test_detect(flags, onednn, machine, expected):
    """tensorflow/core/util/util.cc IsDataTypeSupportedByOneDNNOnThisCPU(DT_HALF)."""
    assert platform.detect(flags, onednn, machine).name == expected
