"""Regenerate golden fixtures from the real frameworks.

    python -m lstm_ref.harness.golden generate [--force] [--only ID ...]
    python -m lstm_ref.harness.golden check

``generate`` writes every case (or, with ``--only``, the named ones next to
copies of the others) into a temporary directory beside ``fixtures/`` and
swaps it in only when all cases succeeded, so a crash leaves the old
goldens intact.  It refuses to replace goldens whose numbers changed
unless ``--force`` is given, and prints a per-case diff table either way.
``check`` regenerates into a temporary directory and compares with the
committed files: the command to run after upgrading TF.
"""

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

from ...platform import profile_of_provenance
from .. import platforms
from ..compare import run_and_compare, ulps_apart
from ..oracles.pool import OraclePool
from ..platforms import VERSION_KEYS
from ..records import RECORDS, golden_cases, record_of
from . import grad, store


def build_case(case_id, fn):
    case = fn()
    case.name = case_id
    return case


def generate_into(directory: Path, pool: OraclePool, only=None, progress=True):
    cases, grad_cases = golden_cases(), grad.GRAD_CASES
    unknown = sorted(set(only or ()) - set(cases) - set(grad_cases))
    if unknown:
        raise SystemExit(f"unknown case id(s) {unknown}")
    ids = [c for c in sorted(cases) if not only or c in only]
    grad_ids = [c for c in sorted(grad_cases) if not only or c in only]
    total = len(ids) + len(grad_ids)
    for i, case_id in enumerate(ids, 1):
        case = build_case(case_id, cases[case_id])
        oracle = pool.for_kind(case.kind)
        out = oracle.run(case, cross_check=True)
        fields = case.reference().fields()
        meta = {
            "format_version": store.FORMAT_VERSION,
            "case_id": case_id,
            "kind": case.kind,
            "config": case.config,
            "notes": case.notes,
            "meta": case.meta,
            "provenance": oracle.hello(),
        }
        data = store.encode(meta, case.arrays(), {k: out[k] for k in fields})
        folder = directory / record_of(case.kind).id
        folder.mkdir(exist_ok=True)
        (folder / f"{case_id}.npz").write_bytes(data)
        if progress:
            print(f"[{i}/{total}] {case_id}", file=sys.stderr, flush=True)
    for i, case_id in enumerate(grad_ids, len(ids) + 1):  # gradient goldens: fixtures/<record id>/grad/
        grad.generate(case_id, grad_cases[case_id], pool, directory, lambda kind: record_of(kind).id)
        if progress:
            print(f"[{i}/{total}] {case_id}", file=sys.stderr, flush=True)
    folders = [record.id for record in RECORDS] + [f"{record.id}/{store.GRAD}" for record in RECORDS]
    digests = store.digests(directory, folders)
    store.write_manifest(directory, digests)
    return digests


def diff_table(old_dir: Path, new_dir: Path) -> list:
    """Rows (case id, status, max |new - old| over outputs)."""
    rows = []
    try:
        old_ids = set(store.case_ids(old_dir))
    except Exception:  # noqa: BLE001 - no or broken old manifest: everything is new
        old_ids = set()
    new_ids = set(store.case_ids(new_dir))
    for case_id in sorted(old_ids | new_ids):
        if case_id not in new_ids:
            rows.append((case_id, "removed", ""))
            continue
        if case_id not in old_ids:
            rows.append((case_id, "added", ""))
            continue
        new = store.load(case_id, new_dir)
        try:
            old = store.load(case_id, old_dir)
        except Exception as exc:  # noqa: BLE001
            rows.append((case_id, f"old unreadable: {exc}", ""))
            continue
        same_inputs = _same(old.case.arrays(), new.case.arrays()) and old.config == new.config
        # Drift across CPUs: another CPU or profile, the same framework versions.
        moved = _cpu_of(old) != _cpu_of(new) and _versions_of(old) == _versions_of(new)
        if old.expected.keys() != new.expected.keys():
            rows.append((case_id, "fields changed", ""))
            continue
        worst = max(
            float(np.max(np.abs(old.expected[k].astype(np.float64) - new.expected[k].astype(np.float64))))
            if old.expected[k].shape == new.expected[k].shape
            else float("inf")
            for k in new.expected
        )
        if not same_inputs:
            status = "inputs changed"
        elif worst == 0 and all(np.array_equal(old.expected[k], new.expected[k]) for k in new.expected):
            status = "identical"
        elif moved and _reference_passes(new):
            status = "cross-CPU drift"  # another CPU or profile; the reference still meets the tolerance there
        else:
            status = "outputs changed"
        shown = f"{worst:.3g}"
        if status != "identical" and worst != float("inf"):
            dtype = _compute_dtype(new)
            ulps = max(
                int(np.max(ulps_apart(old.expected[k], new.expected[k], dtype), initial=0)) for k in new.expected
            )
            shown += f" ({ulps} ulp)"
        rows.append((case_id, status, shown))
    return rows + grad.diff_rows(old_dir, new_dir)


def _cpu_of(golden):
    prov = golden.meta.get("provenance", {})
    return prov.get("cpu"), str(profile_of_provenance(prov))


def _versions_of(golden):

    prov = golden.meta.get("provenance", {})
    return {k: prov.get(k) for k in VERSION_KEYS}


def _compute_dtype(golden):
    return golden.case.reference().policy.compute


def _reference_passes(golden) -> bool:
    """Whether the reference, under the golden's own profile, is within the
    tolerance of the golden's outputs (the one comparison)."""
    return run_and_compare(golden.case, golden.expected)[3].passed


def _same(a, b):
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if a is None or b is None:
        return a is b
    return a.dtype == b.dtype and np.array_equal(a, b)


def print_recorded_drift(directory):
    """The committed goldens against every recording's run of the same case."""

    for path in platforms.recordings(Path(directory) / "platforms"):
        recording = platforms.load(path)
        print(f"\ngoldens against {recording.name} ({recording.cpu.get('cpu')}, profile {recording.profile}):")
        for kind, stats in platforms.golden_drift(recording, directory).items():
            print(
                f"  {kind:45s} {stats['cases']:3d} goldens, {stats['differ']:3d} differ; max |d| "
                f"{stats['max_abs']:.3g}, {stats['max_ulps']} ulp"
            )


def print_table(rows):
    width = max([len(r[0]) for r in rows] + [7])
    print(f"{'case':<{width}}  {'status':<16}  max |new-old|")
    for case_id, status, worst in rows:
        print(f"{case_id:<{width}}  {status:<16}  {worst}")


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m lstm_ref.harness.golden")
    parser.add_argument("command", choices=["generate", "check"])
    parser.add_argument("--force", action="store_true", help="replace goldens whose numbers changed")
    parser.add_argument("--only", nargs="*", help="regenerate just these case ids; the others are kept")
    parser.add_argument("--dir", type=Path, default=store.FIXTURES)
    args = parser.parse_args(argv)
    target = args.dir.resolve()
    target.parent.mkdir(parents=True, exist_ok=True)
    pool = OraclePool()
    tmp = Path(tempfile.mkdtemp(prefix=".fixtures-new-", dir=target.parent))
    try:
        if args.only and target.exists():  # a partial run keeps every other golden
            for record in RECORDS:
                if (target / record.id).is_dir():
                    shutil.copytree(target / record.id, tmp / record.id)
        generate_into(tmp, pool, only=args.only)
        rows = diff_table(target, tmp)
        print_table(rows)
        changed = [r for r in rows if r[1] not in ("identical", "cross-CPU drift")]
        drift = [r for r in rows if r[1] == "cross-CPU drift"]
        if args.command == "check":
            print(
                f"\n{len(rows) - len(changed) - len(drift)} identical, {len(drift)} drift across CPUs (the "
                f"reference within tolerance on both), {len(changed)} differ from {target}"
            )
            print_recorded_drift(target)
            return 1 if changed else 0
        numbers_changed = [r for r in changed if r[1] not in ("added",)]
        if numbers_changed and not args.force and target.exists():
            print(f"\nrefusing to overwrite {len(numbers_changed)} changed golden(s) without --force", file=sys.stderr)
            return 1
        if (target / "platforms").is_dir():  # the recordings are not goldens: carried over as they are
            shutil.copytree(target / "platforms", tmp / "platforms")
        _swap(tmp, target)
        tmp = None
        print(f"\nwrote {len(rows)} golden(s) to {target}")
        return 0
    finally:
        pool.close()
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)


def _swap(new: Path, target: Path):
    """Replace ``target`` by ``new`` with two renames; the old one is removed last."""
    old = None
    if target.exists():
        old = target.with_name(f".fixtures-old-{new.name}")
        target.rename(old)
    new.rename(target)
    if old is not None:
        shutil.rmtree(old)
