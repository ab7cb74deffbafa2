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

# The kinds this module checks: `make mutants` runs it against their mutants.
pytestmark = pytest.mark.kinds("keras3", "contrib")

# Collected from the folders as they are; each recording is verified (its
# checksums) when a test first opens it, so a damaged or half-written one
# fails its own tests instead of the collection.
FOLDERS = {path.name: path for path in platforms.recordings()}
CASES = [(name, case) for name, path in FOLDERS.items() for case in platforms.Recording(name, path, {}).case_names()]
TABLES = [
    (name, key)
    for name, path in FOLDERS.items()
    for key in sorted(platforms.Recording(name, path, {}).activation_keys())
]


class _Opened(dict):
    def __missing__(self, name):
        self[name] = platforms.load(FOLDERS[name])
        return self[name]


RECORDINGS = _Opened()


def test_the_recordings_cover_both_x86_profiles():
    assert {str(RECORDINGS[name].profile) for name in FOLDERS} >= {"x86-eigen", "x86-onednn-fp16"}, FOLDERS


@pytest.mark.parametrize("name", sorted(FOLDERS))
def test_recording_is_sealed_complete_and_of_the_suites_framework_versions(name):
    recording = RECORDINGS[name]
    platforms.check_versions(recording, platforms.golden_versions())
    assert not recording.refused(), f"{name}: cases its frameworks refused when recording: {recording.refused()}"


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


@pytest.mark.parametrize("name", sorted(FOLDERS))
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
    drift = {name: platforms.golden_drift(RECORDINGS[name]) for name in FOLDERS}
    for name, per_kind in drift.items():
        # every golden the recording ran is measured (goldens added after it, e.g. a newer kind's, are not in it)
        recorded = {n[len("golden_") :] for n in RECORDINGS[name].case_names() if n.startswith("golden_")}
        assert sum(s["cases"] for s in per_kind.values()) == len(recorded & set(store.case_ids())) > 0, name
        assert any(s["differ"] for s in per_kind.values()), name


def test_an_arm_recording_needs_no_code_change(tmp_path):
    """A recording whose cpu.json says aarch64 takes the ``aarch64`` profile
    (Eigen's x86 float16 semantics as the hypothesis) and replays as is.
    Its numbers here are an x86 machine's: this proves the mechanism only."""
    source = RECORDINGS["xeon-onednn-off"].directory
    arm = tmp_path / "graviton"
    shutil.copytree(source, arm)
    cpu = json.loads((arm / "cpu.json").read_text())
    cpu.update(
        cpu="Neoverse-V1",
        flags=["asimd", "asimdhp", "fphp", "sve"],
        machine="aarch64",
        platform="Linux-6.1-aarch64-with-glibc2.36",
    )
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
    for recording in map(RECORDINGS.__getitem__, FOLDERS):
        proc = subprocess.run(
            [sys.executable, "-m", "lstm_ref", "replay", str(recording.directory)],
            capture_output=True,
            text=True,
            env=env,
        )
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
        ["diagnose", "--kind", "keras.layers.LSTM", "--config", "{}", "--weights", "w.npz"],
    ],
)
def test_unknown_profile_on_the_command_line(command, tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "lstm_ref", *command, "--platform", "sparc"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert proc.returncode == 2, proc.stderr
    assert "--platform: unknown platform profile 'sparc'; known: x86-eigen" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_another_framework_version_is_refused():
    recording = RECORDINGS["avx512fp16-xeon"]
    cpu = json.loads(json.dumps(recording.cpu))
    cpu["oracles"]["keras.layers.LSTM"]["tensorflow"] = "2.20.0"
    with pytest.raises(
        platform.PlatformError, match="ran tensorflow 2.20.0, but the suite's oracles .* are tensorflow 2.21.0"
    ):
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


@pytest.mark.parametrize(
    "flags,onednn,machine,expected",
    [
        (["avx2", "fma", "f16c"], "default (on)", "x86_64", "x86-eigen"),
        (["avx512f", "avx512bw", "avx512_bf16"], "default (on)", "x86_64", "x86-eigen"),  # Zen 4: no FP16
        (["avx512bw", "avx512_fp16"], "default (on)", "x86_64", "x86-onednn-fp16"),
        (["avx512bw", "avx512_fp16"], "0", "x86_64", "x86-eigen"),
        (["avx512bw", "amx_fp16"], "1", "x86_64", "x86-onednn-fp16"),
        (["avx2", "avx_ne_convert"], "default (on)", "x86_64", "x86-onednn-fp16"),
        (["asimd", "asimdhp"], "default (on)", "aarch64", "aarch64"),
    ],
)
def test_detect(flags, onednn, machine, expected):
    """tensorflow/core/util/util.cc IsDataTypeSupportedByOneDNNOnThisCPU(DT_HALF)."""
    assert platform.detect(flags, onednn, machine).name == expected


def test_record_platform_refuses_an_existing_file(tmp_path):
    target = tmp_path / "taken"
    target.write_text("not a folder")
    proc = subprocess.run(
        [sys.executable, "-m", "lstm_ref", "record-platform", str(target)], capture_output=True, text=True, cwd=tmp_path
    )
    assert proc.returncode == 2, proc.stderr
    assert "exists and is not an empty folder" in proc.stderr and "Traceback" not in proc.stderr


def test_a_recording_without_versions_is_refused():
    recording = RECORDINGS["avx512fp16-xeon"]
    cpu = {k: v for k, v in recording.cpu.items() if k != "oracles"}
    with pytest.raises(platform.PlatformError, match="names no framework version for"):
        platforms.check_versions(replace(recording, cpu=cpu), platforms.golden_versions())


def test_refused_cases_fail_the_replay(tmp_path):
    """A case a framework refused while recording is not silently dropped."""
    copy = tmp_path / "rec"
    shutil.copytree(RECORDINGS["avx512fp16-xeon"].directory, copy)
    (copy / "refused.json").write_text(json.dumps({"sweep_torch_00": "OracleError: worker crashed"}))
    platforms.seal(copy)
    rows = replay(platforms.load(copy))
    assert [r["name"] for r in rows if not r["passed"]] == ["sweep_torch_00"]


def test_the_report_names_the_profile(tmp_path, monkeypatch, capsys):
    """``report --no-live``, in-process, its 162 per-case plots left out
    (a tenth of a second each; `make report` draws them)."""
    pytest.importorskip("matplotlib", reason="the report's plots need the report extra")
    from lstm_ref.harness import report
    from lstm_ref.harness.cli import main

    monkeypatch.setattr(report, "_plot", lambda row: "")
    code = main(["report", "--no-live", "--no-progress", "--out", str(tmp_path)])
    assert code == 0, capsys.readouterr().err[-2000:]
    text = (tmp_path / "parity.md").read_text()
    assert f"Platform profile of this machine: {platform.detect()}" in text
    assert "bitwise (on x86-eigen)" in text  # the goldens' float16 rows name the profile they were proved on
    assert json.loads((tmp_path / "parity.json").read_text())["environment"]["platform_profile"]["name"] == str(
        platform.detect()
    )


def test_replay_without_goldens_says_where_they_are(tmp_path):
    """An installed copy has no goldens to check a recording's versions against."""
    env = {**os.environ, "LSTM_PARITY_FIXTURES": str(tmp_path / "none")}
    proc = subprocess.run(
        [sys.executable, "-m", "lstm_ref", "replay", str(FOLDERS["avx512fp16-xeon"])],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    assert proc.returncode == 2, proc.stderr
    assert "run it from a clone of lstm-parity, or set LSTM_PARITY_FIXTURES" in proc.stderr
    assert "Traceback" not in proc.stderr
