"""Golden fixture files: deterministic writing, verified loading.

Each case is ``fixtures/<record id>/<case id>.npz`` (one folder per kind,
named by its record): the case's arrays as
``Case.arrays`` names them (``x``, ``w:<name>``, ``<state>0``, ``mask``), TF's
outputs under ``out:<field>`` for every field the family declares
(``out:h``, ``out:c``, ``out:final_h``, ``out:final_c`` for the LSTMs) and
``__meta__`` (JSON: format version,
kind, config, notes, provenance).  A gradient golden (``golden/grad.py``) is
``fixtures/<record id>/grad/<case id>.npz``: the same inputs, the upstream
under ``up:<field>`` and the framework's gradients under ``out:<array>``
(``out:x``, ``out:h0``, ``out:w:<name>``, ``out:steps:<state>``).
``fixtures/MANIFEST.json`` records each
file's sha256, keyed by its path under ``fixtures/``.  Files are written with a fixed zip timestamp and sorted
entries, so that regenerating on the same machine is bitwise identical.
"""

import hashlib
import io
import json
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...case import Case
from ...errors import FixtureError
from ...platform import profile_of_provenance

FORMAT_VERSION = 1
FIXTURES = Path(os.environ.get("LSTM_PARITY_FIXTURES") or Path(__file__).resolve().parents[3] / "fixtures")
MANIFEST = "MANIFEST.json"


@dataclass
class Golden:
    case_id: str
    meta: dict
    case: Case  # the inputs, as a Case named after the file
    expected: dict  # TF's outputs: field name -> array

    @property
    def kind(self):
        return self.meta["kind"]

    @property
    def config(self):
        return self.meta["config"]


def _npy_bytes(arr) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array(buf, np.ascontiguousarray(arr), allow_pickle=False)
    return buf.getvalue()


def encode(meta: dict, inputs: dict, expected: dict) -> bytes:
    entries = dict(inputs)
    entries.update({f"out:{k}": v for k, v in expected.items()})
    entries["__meta__"] = np.frombuffer(json.dumps(meta, sort_keys=True, indent=1).encode(), dtype=np.uint8)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        for name in sorted(entries):
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            zf.writestr(info, _npy_bytes(entries[name]))
    return buf.getvalue()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def read_manifest(directory: Path = FIXTURES) -> dict:
    path = Path(directory) / MANIFEST
    try:
        manifest = json.loads(path.read_text())
    except FileNotFoundError:
        raise FixtureError(f"{path}: no manifest; run `make fixtures`") from None
    except json.JSONDecodeError as exc:
        raise FixtureError(f"{path}: not valid JSON ({exc})") from None
    if manifest.get("format_version") != FORMAT_VERSION:
        raise FixtureError(f"{path}: format_version {manifest.get('format_version')!r}, expected {FORMAT_VERSION}")
    return manifest


def write_manifest(directory: Path, digests: dict):
    manifest = {"format_version": FORMAT_VERSION, "files": dict(sorted(digests.items()))}
    (Path(directory) / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")


GRAD = "grad"  # the gradient goldens' folder inside each kind's


def relative_paths(manifest: dict) -> dict:
    """``{case id: its file's path under the fixtures folder}``, as listed."""
    return {Path(rel).stem: rel for rel in manifest["files"]}


def is_grad(rel) -> bool:
    """Whether a listed path is a gradient golden's (``<kind>/grad/<id>.npz``)."""
    return Path(rel).parent.name == GRAD


def path_of(case_id: str, directory: Path = FIXTURES) -> Path:
    """Where the manifest in ``directory`` keeps ``case_id``'s file."""
    rel = relative_paths(read_manifest(directory)).get(case_id)
    if rel is None:
        raise FixtureError(f"{Path(directory) / case_id}.npz: not listed in {MANIFEST}")
    return Path(directory) / rel


def load(case_id: str, directory: Path = FIXTURES, manifest: dict = None) -> Golden:
    """Load one golden case, verifying its checksum and format version."""
    meta, entries = read_verified(case_id, directory, manifest)
    expected = {k[4:]: entries.pop(k) for k in list(entries) if k.startswith("out:")}
    return Golden(case_id, meta, case_of(case_id, meta, entries), expected)


def case_of(case_id: str, meta: dict, entries: dict) -> Case:
    """The stored Case of a golden (run or gradient): its arrays, config and provenance's platform."""
    return Case.from_arrays(
        meta["kind"],
        meta["config"],
        entries,
        name=case_id,
        notes=meta.get("notes", ""),
        meta=meta.get("meta", {}),
        platform=profile_of_provenance(meta.get("provenance", {})),
    )


def read_verified(case_id: str, directory: Path = FIXTURES, manifest: dict = None):
    """``(meta, entries)`` of one golden file, its checksum and format
    version verified (any golden: run or gradient)."""
    directory = Path(directory)
    manifest = manifest or read_manifest(directory)
    rel = relative_paths(manifest).get(case_id)
    if rel is None:
        raise FixtureError(f"{directory / case_id}.npz: not listed in {MANIFEST}")
    path, want = directory / rel, manifest["files"][rel]
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise FixtureError(f"{path}: listed in {MANIFEST} but missing") from None
    if sha256(data) != want:
        raise FixtureError(f"{path}: sha256 mismatch with {MANIFEST} (truncated, corrupted or edited?)")
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            entries = {k: npz[k] for k in npz.files}
        meta = json.loads(entries.pop("__meta__").tobytes().decode())
    except Exception as exc:  # noqa: BLE001 - any decoding failure names the file
        raise FixtureError(f"{path}: cannot be read as a golden fixture ({exc})") from None
    if meta.get("format_version") != FORMAT_VERSION:
        raise FixtureError(f"{path}: format_version {meta.get('format_version')!r}, expected {FORMAT_VERSION}")
    return meta, entries


def case_ids(directory: Path = FIXTURES) -> list:
    """The run goldens' ids (the gradient goldens: :func:`grad_case_ids`)."""
    return sorted(cid for cid, rel in relative_paths(read_manifest(directory)).items() if not is_grad(rel))


def grad_case_ids(directory: Path = FIXTURES) -> list:
    return sorted(cid for cid, rel in relative_paths(read_manifest(directory)).items() if is_grad(rel))


def digests(directory: Path, folders) -> dict:
    """``{path under directory: sha256}`` of every golden file in ``folders``
    (the kinds' folders; recordings under ``platforms/`` are not goldens)."""
    return {
        str(p.relative_to(directory)): sha256(p.read_bytes())
        for folder in folders
        for p in sorted((Path(directory) / folder).glob("*.npz"))
    }
