"""Recordings of what the real frameworks compute on one CPU, and their replay.

A recording is a folder (``fixtures/platforms/<name>/``) written by
``lstm-ref record-platform OUT`` (``make record-platform NAME=...``) on the
machine it describes:

* ``cpu.json``: the CPU's model and flags, ``TF_ENABLE_ONEDNN_OPTS``, the
  platform profile it decides (``lstm_ref/platform.py``), and every oracle's
  hello (framework versions);
* one ``.npz`` per case: every record's sweep case (``sweep_*``) and every
  golden case (``golden_<id>``): the inputs as ``Case.arrays()`` names them,
  the framework's outputs as ``out_<field>`` and ``meta`` (JSON bytes: kind,
  config, name);
* ``activations.npz``: each Keras worker's activations on every finite
  float16, rows of 4 and of 62, keyed ``<kind>|<name>|<width>``;
* ``MANIFEST.json``: the sha256 of every file, checked on load as the
  goldens' are.

``parity_tests/test_platforms.py`` replays every recording with NumPy alone:
the reference, under the recording's profile, must meet the same criteria as
live (the tolerance, the one-step bitwise share, the activations' ulp
bounds).  A recording from other framework versions than the goldens' is
refused, naming both.
"""

import json
import os
import platform as _platform
import shutil
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import activations
from ..case import Case
from ..errors import FixtureError
from ..platform import PlatformError, detect, get, machine_of
from .compare import ulps_apart
from .golden import store
from .oracles import provenance
from .oracles.provenance import FRAMEWORKS
from .records import RECORDS, golden_cases

RECORDINGS = store.FIXTURES / "platforms"
MANIFEST = store.MANIFEST
# The framework versions a recording must share with the goldens.
VERSION_KEYS = tuple(FRAMEWORKS)


def _sha256(path: Path) -> str:
    return store.sha256(path.read_bytes())


def seal(directory) -> dict:
    """Write ``MANIFEST.json`` (the goldens' format): the sha256 of every file of the recording."""
    directory = Path(directory)
    files = {p.name: _sha256(p) for p in sorted(directory.iterdir()) if p.is_file() and p.name != MANIFEST}
    store.write_manifest(directory, files)
    return files


@dataclass
class Recording:
    name: str
    directory: Path
    cpu: dict  # cpu.json

    @property
    def profile(self):
        info = self.cpu
        if info.get("platform_profile"):
            return get(info["platform_profile"], where=f"{self.directory / 'cpu.json'}")
        return detect(info.get("flags", []), info.get("TF_ENABLE_ONEDNN_OPTS"), machine_of(info))

    def versions(self) -> dict:
        """``{kind: {framework: version}}`` of the oracles that recorded it."""
        return {
            kind: {k: v for k, v in hello.items() if k in VERSION_KEYS}
            for kind, hello in self.cpu.get("oracles", {}).items()
        }

    def case_names(self) -> list:
        return sorted(p.stem for p in self.directory.glob("*.npz") if p.name != "activations.npz")

    def case(self, name: str):
        """``(Case, expected outputs)``, the case stamped with the recording's profile."""
        with np.load(self.directory / f"{name}.npz", allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
        meta = json.loads(arrays.pop("meta").tobytes().decode())
        expected = {k[4:]: arrays.pop(k) for k in list(arrays) if k.startswith("out_")}
        case = Case.from_arrays(meta["kind"], meta["config"], arrays, name=meta["name"], platform=self.profile)
        return case, expected

    def activation_keys(self) -> list:
        """``(kind, name, width)`` of every recorded table (read without loading them)."""
        path = self.directory / "activations.npz"
        if not path.exists():
            return []

        with zipfile.ZipFile(path) as zf:
            names = [n[: -len(".npy")] for n in zf.namelist()]
        return [(k.split("|")[0], k.split("|")[1], int(k.split("|")[2])) for k in names]

    def refused(self) -> dict:
        """What the frameworks refused or crashed on while recording (``refused.json``)."""
        path = self.directory / "refused.json"
        return json.loads(path.read_text()) if path.exists() else {}

    def activations(self) -> dict:
        """``{(kind, name, width): TF's output}`` on every finite float16 (read once)."""
        if "_tables" not in self.__dict__:
            path = self.directory / "activations.npz"
            tables = {}
            if path.exists():
                with np.load(path, allow_pickle=False) as npz:
                    tables = {(k.split("|")[0], k.split("|")[1], int(k.split("|")[2])): npz[k] for k in npz.files}
            self.__dict__["_tables"] = tables
        return self.__dict__["_tables"]


def load(directory) -> Recording:
    """Open a recording, verifying every file's checksum."""
    directory = Path(directory)
    if not (directory / MANIFEST).is_file():
        raise FixtureError(f"{directory / MANIFEST}: no manifest (a recording is sealed by `lstm-ref record-platform`)")
    manifest = store.read_manifest(directory)
    for name, want in manifest["files"].items():
        try:
            got = _sha256(directory / name)
        except FileNotFoundError:
            raise FixtureError(f"{directory / name}: listed in {MANIFEST} but missing") from None
        if got != want:
            raise FixtureError(f"{directory / name}: sha256 mismatch with {MANIFEST} (truncated, corrupted or edited?)")
    unlisted = sorted(
        p.name for p in directory.iterdir() if p.is_file() and p.name not in manifest["files"] and p.name != MANIFEST
    )
    if unlisted:
        raise FixtureError(f"{directory}: {unlisted} not listed in {MANIFEST}")
    try:
        cpu = json.loads((directory / "cpu.json").read_text())
    except (FileNotFoundError, json.JSONDecodeError) as exc:
        raise FixtureError(f"{directory / 'cpu.json'}: cannot be read ({exc})") from None
    return Recording(directory.name, directory, cpu)


def golden_versions(directory=store.FIXTURES) -> dict:
    """``{kind: {framework: version}}`` from the committed goldens' provenance."""
    out = {}
    for case_id in store.case_ids(directory):
        golden = store.load(case_id, directory)
        prov = golden.meta.get("provenance", {})
        out.setdefault(golden.kind, {k: v for k, v in prov.items() if k in VERSION_KEYS})
    return out


def check_versions(recording: Recording, expected: dict):
    """Refuse a recording made with other framework versions than ``expected``
    (``{kind: {framework: version}}``, the goldens'), or one that does not
    say which versions made it."""
    recorded = recording.versions()
    unstated = sorted({recording.case(n)[0].kind for n in recording.case_names()} - set(recorded))
    if unstated:
        raise PlatformError(f"recording {recording.directory}: cpu.json names no framework version for {unstated}")
    for kind, versions in recorded.items():
        for framework, version in versions.items():
            want = expected.get(kind, {}).get(framework)
            if want is not None and want != version:
                raise PlatformError(
                    f"recording {recording.directory}: {kind} ran {framework} {version}, but the suite's oracles "
                    f"(the goldens' provenance) are {framework} {want}: re-record it with {framework} {want}"
                )


def recordings(root=RECORDINGS) -> list:
    """The recording folders under ``root``, by name."""
    root = Path(root)
    return sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")) if root.is_dir() else []


def golden_drift(recording: Recording, directory=store.FIXTURES) -> dict:
    """How far each committed golden's outputs lie from the same case run on
    the recording's CPU, per kind: ``{kind: {"cases", "differ", "max_abs",
    "max_ulps"}}`` (ulps in the case's compute dtype).  Drift, not failure:
    the replay judges the reference on the recording."""

    out = {}
    recorded = set(recording.case_names())
    for case_id in store.case_ids(directory):
        if f"golden_{case_id}" not in recorded:
            continue
        golden = store.load(case_id, directory)
        _, there = recording.case(f"golden_{case_id}")
        dtype = golden.case.reference().policy.compute
        stats = out.setdefault(golden.kind, {"cases": 0, "differ": 0, "max_abs": 0.0, "max_ulps": 0})
        stats["cases"] += 1
        diffs = [
            np.max(np.abs(golden.expected[k].astype(np.float64) - there[k].astype(np.float64)), initial=0.0)
            for k in golden.expected
        ]
        ulps = [int(np.max(ulps_apart(golden.expected[k], there[k], dtype), initial=0)) for k in golden.expected]
        stats["differ"] += int(max(ulps) > 0)
        stats["max_abs"] = max(stats["max_abs"], float(np.nanmax(diffs)))
        stats["max_ulps"] = max(stats["max_ulps"], max(ulps))
    return dict(sorted(out.items()))


# -- recording ---------------------------------------------------------------


def _cpu_info(pool) -> dict:

    return {
        "cpu": provenance.cpu_model(),
        "flags": provenance.cpu_flags(),
        "machine": _platform.machine(),
        "platform": _platform.platform(),
        "TF_ENABLE_ONEDNN_OPTS": provenance.onednn_setting(),
        "platform_profile": detect().name,
        "oracles": {},
    }


def record(outdir, pool, progress=None) -> Recording:
    """Record every sweep and golden case and the float16 activation tables
    on this machine into ``outdir`` (created; must be empty), then seal it.
    ``progress(done, total, name)`` is called after each case.  A case a
    worker refuses is written to ``refused.json``, not dropped (and the
    replay fails on it)."""
    final = Path(outdir)
    if final.exists() and (not final.is_dir() or any(final.iterdir())):
        raise FixtureError(f"{final}: exists and is not an empty folder; record into a new one")
    final.parent.mkdir(parents=True, exist_ok=True)
    # Written beside the target and renamed into place once sealed: an
    # interrupted recording leaves no half-written folder for the suite.
    out = Path(tempfile.mkdtemp(prefix=f".{final.name}.partial-", dir=final.parent))
    try:
        _record_into(out, pool, progress)
        if final.exists():
            final.rmdir()
        out.rename(final)
    finally:
        shutil.rmtree(out, ignore_errors=True)
    return load(final)


def _record_into(out: Path, pool, progress):

    info = _cpu_info(pool)
    cases = [(case.name, case) for record in RECORDS for case in record.sweep(0)]
    cases += [(f"golden_{cid}", fn()) for cid, fn in sorted(golden_cases().items())]
    bits = np.arange(2**16, dtype=np.uint16).view(np.float16)
    finite = bits[np.isfinite(bits)]
    tables = [
        (kind, name, width)
        for kind, names in (
            ("keras.layers.LSTM", sorted(activations.KERAS3)),
            ("tf_keras.layers.LSTM", activations.TF_KERAS_NAMES),
        )
        for name in names
        for width in (4, 62)
    ]
    total, refused, acts = len(cases) + len(tables), {}, {}
    for done, (name, case) in enumerate(cases, 1):
        try:
            oracle = pool.for_kind(case.kind)
            info["oracles"].setdefault(case.kind, oracle.hello())
            got = oracle.run(case)
        except Exception as exc:  # noqa: BLE001 - a refusal or a crash is recorded, not fatal
            refused[name] = f"{type(exc).__name__}: {str(exc)[:300]}"
        else:
            arrays = {k: np.asarray(v) for k, v in case.arrays().items()}
            arrays.update({f"out_{k}": np.asarray(v) for k, v in got.items()})
            meta = {"kind": case.kind, "config": case.config, "name": name}
            arrays["meta"] = np.frombuffer(json.dumps(meta, default=str).encode(), dtype=np.uint8)
            np.savez_compressed(out / f"{name}.npz", **arrays)
        if progress:
            progress(done, total, name)
    for done, (kind, name, width) in enumerate(tables, len(cases) + 1):
        x = finite[: finite.size // width * width].reshape(-1, width)
        try:
            _, y = pool.for_kind(kind).request({"op": "activation", "name": name}, {"x": x})
            acts[f"{kind}|{name}|{width}"] = y["y"]
        except Exception as exc:  # noqa: BLE001
            refused[f"activation {kind}|{name}|{width}"] = f"{type(exc).__name__}: {str(exc)[:300]}"
        if progress:
            progress(done, total, f"{kind} {name} rows of {width}")
    np.savez_compressed(out / "activations.npz", **acts)
    # The profile the workers computed on (each decides it in its own process).
    seen = {h.get("platform_profile") for h in info["oracles"].values() if "tensorflow" in h} - {None}
    if len(seen) > 1:
        raise FixtureError(f"the TF workers report different platform profiles {sorted(seen)}; record again")
    info["platform_profile"] = seen.pop() if seen else detect().name
    if refused:
        (out / "refused.json").write_text(json.dumps(refused, indent=1, sort_keys=True) + "\n")
    (out / "cpu.json").write_text(json.dumps(info, indent=1, sort_keys=True, default=str) + "\n")
    seal(out)


def print_progress(done, total, name, stream=sys.stderr):
    stream.write(f"[{done}/{total}] {name}\n")
    stream.flush()


def onednn_note() -> str:
    return os.environ.get("TF_ENABLE_ONEDNN_OPTS", "default (on)")
