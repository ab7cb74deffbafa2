"""The golden store: checksums, corruption, format versions, determinism."""

import json
import shutil

import numpy as np
import pytest

import lstm_ref
from lstm_ref.harness.golden import store

CASE = "keras_seed_the_mice_had"
REL = f"keras3/{CASE}.npz"  # one folder per kind, named by its record


@pytest.fixture
def copy_dir(tmp_path):
    for name in (REL, store.MANIFEST):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        shutil.copy(store.FIXTURES / name, tmp_path / name)
    return tmp_path


def test_loads_and_verifies(copy_dir):
    golden = store.load(CASE, copy_dir)
    assert golden.kind == "keras.layers.LSTM"
    assert golden.meta["format_version"] == store.FORMAT_VERSION
    for key in ("tensorflow", "keras", "numpy", "python", "cpu", "onednn"):
        assert key in golden.meta["provenance"]


@pytest.mark.parametrize("damage", ["truncate", "flip_byte", "append"])
def test_damaged_file_is_refused_naming_it(copy_dir, damage):
    path = store.path_of(CASE, copy_dir)
    assert path == copy_dir / REL
    data = bytearray(path.read_bytes())
    if damage == "truncate":
        data = data[: len(data) // 2]
    elif damage == "flip_byte":
        data[len(data) // 2] ^= 0xFF
    else:
        data += b"\0"
    path.write_bytes(bytes(data))
    with pytest.raises(lstm_ref.FixtureError, match=rf"{CASE}\.npz: sha256 mismatch"):
        store.load(CASE, copy_dir)


def test_unlisted_and_missing_files(copy_dir):
    manifest = json.loads((copy_dir / store.MANIFEST).read_text())
    manifest["files"]["ghost.npz"] = "0" * 64
    (copy_dir / store.MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(lstm_ref.FixtureError, match="ghost.npz: listed .* but missing"):
        store.load("ghost", copy_dir)
    with pytest.raises(lstm_ref.FixtureError, match="not listed"):
        store.load("nope", copy_dir)


def test_unknown_format_version_is_refused(copy_dir):
    manifest = json.loads((copy_dir / store.MANIFEST).read_text())
    manifest["format_version"] = 99
    (copy_dir / store.MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(lstm_ref.FixtureError, match="format_version 99"):
        store.load(CASE, copy_dir)


def test_pickled_payload_is_refused(copy_dir):
    """A fixture carrying an object array cannot load: allow_pickle=False."""
    golden = store.load(CASE, copy_dir)
    inputs = {"x": np.array([object()], dtype=object)}
    with pytest.raises(ValueError):
        store.encode(golden.meta, inputs, golden.expected)


def test_encoding_is_deterministic(copy_dir):
    golden = store.load(CASE, copy_dir)
    inputs = golden.case.arrays()
    once = store.encode(golden.meta, inputs, golden.expected)
    assert once == store.encode(golden.meta, inputs, golden.expected)
    assert store.sha256(once) == store.read_manifest(copy_dir)["files"][REL]


def test_every_registered_case_has_a_listed_golden_file():
    """A golden cannot drop out of the suite by leaving the manifest."""
    from lstm_ref.harness.records import golden_cases

    listed = set(store.case_ids())
    on_disk = {p.stem for p in store.FIXTURES.glob("*/*.npz")}
    assert listed == set(golden_cases()) == on_disk


def test_each_golden_lies_in_its_kinds_folder():
    """fixtures/<record id>/<case id>.npz: the folder is the case's kind."""
    from lstm_ref.harness.records import record_of

    for case_id in store.case_ids():
        path = store.path_of(case_id)
        assert path.parent.name == record_of(store.load(case_id).kind).id, path
