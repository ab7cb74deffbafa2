"""``lstm-ref doctor``: which oracle can run here, in which interpreter, on
which framework version, and how to get the ones that cannot.

Nothing heavy is imported: each interpreter an oracle would run in is asked,
in a subprocess, which modules it finds (``importlib.util.find_spec``) and
which versions its distributions are (``importlib.metadata``), in well under
a second.  The versions are set against those the goldens and tolerances
were measured on (``provenance.MEASURED``).
"""

import json
import os
import subprocess
import sys

from ... import __version__, platform
from ..oracles import provenance
from ..oracles.client import ORACLES, import_root
from ._common import EXIT_FAIL, EXIT_PASS, UsageError, user_path

NAME = "doctor"

PROBE_TIMEOUT = 60.0  # seconds for one interpreter to list its modules (a cold disk is slow)

# Run by each interpreter: argv names modules; prints {module: {"found": bool, "versions": [[dist, version]]}}.
PROBE = """
import importlib.metadata as m, importlib.util as u, json, sys
try:
    dists = m.packages_distributions()
except AttributeError:  # Python < 3.10
    dists = {}
out = {}
for name in sys.argv[1:]:
    try:
        found = u.find_spec(name) is not None
    except Exception:
        found = False
    versions = []
    for dist in dict.fromkeys(dists.get(name) or [name]):
        try:
            versions.append([dist, m.version(dist)])
        except Exception:
            pass
    out[name] = {"found": found, "versions": versions}
print(json.dumps(out))
"""

HOW = {"current": "this interpreter", "venv": "the clone's venv", "missing": "not found"}

EPILOG = """exit codes:
  0  every listed oracle can run here
  1  at least one cannot: its row says what is missing and the pip install (or make target) that brings it
  2  usage error
"""


def add_parser(sub):
    doc = sub.add_parser(
        "doctor",
        help="list the framework oracles: which can run here, where, on which version",
        description="One row per oracle (the framework process that runs a kind): the kinds it serves, the "
        "interpreter it runs in and how that was found ($LSTM_PARITY_<NAME>_PYTHON, this "
        "interpreter when it has the framework, or the clone's .venv-<name>), the framework's version "
        "and a note where it differs from the version the tolerances were measured on; or what is "
        "missing and how to get it.",
        epilog=EPILOG,
    )
    doc.add_argument(
        "--kind",
        action="append",
        default=[],
        metavar="ID",
        help="list only the oracle of this kind (a record id such as onnx or torch, a kind such as "
        "keras.layers.LSTM, tflite, or an oracle name); repeatable",
    )
    doc.add_argument(
        "--json",
        nargs="?",
        const="-",
        metavar="PATH",
        help="the rows as JSON: on stdout instead of the table, or written to PATH",
    )
    doc.add_argument("--debug", action="store_true", help="show tracebacks on errors")


def served() -> dict:
    """``{oracle name: [(id, kind), ...]}``: the kinds each oracle serves,
    from the kind records and the TFLite target."""
    from ..records import RECORDS
    from ..tflite.spec import TARGET

    out = {name: [] for name in ORACLES}
    for record in RECORDS:
        out[record.oracle.name].append((record.id, record.kind))
        for backend in record.backends or ():  # Keras 3 on JAX and torch: the same kind, another oracle
            if backend.oracle.name != record.oracle.name:
                out[backend.oracle.name].append((f"{record.id}@{backend.name}", f"{record.kind} ({backend.name})"))
    out[TARGET.oracle.name].append((TARGET.name, f"{TARGET.name} (of {', '.join(TARGET.kinds)})"))
    return out


def selected(wanted, kinds) -> list:
    """The oracle names ``--kind`` asks for (all when none)."""
    if not wanted:
        return list(ORACLES)
    names = []
    for word in wanted:
        hits = [name for name, pairs in kinds.items() if word == name or any(word in pair for pair in pairs)]
        if not hits:
            known = sorted({i for pairs in kinds.values() for i, _ in pairs})
            raise UsageError(
                f"--kind {word}: no such kind; give a record id ({', '.join(known)}), a kind such as "
                "keras.layers.LSTM, or an oracle name"
            )
        names += [name for name in hits if name not in names]
    return [name for name in ORACLES if name in names]


def probe(python, modules, timeout=PROBE_TIMEOUT) -> dict:
    """What ``python`` finds of ``modules``, as the worker would see them
    (its PYTHONPATH and working directory); raises RuntimeError with why."""
    root = import_root()
    env = {**os.environ, "PYTHONPATH": str(root)}
    try:
        done = subprocess.run(
            [python, "-c", PROBE, *modules], capture_output=True, text=True, timeout=timeout, env=env, cwd=root
        )
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"{python} did not list its modules within {timeout:.0f}s") from None
    except OSError as exc:
        raise RuntimeError(f"{python} cannot be run: {exc}") from None
    if done.returncode:
        last = [line for line in done.stderr.splitlines() if line.strip()][-1:] or ["no stderr"]
        raise RuntimeError(f"{python} failed to list its modules (exit {done.returncode}): {last[0]}")
    try:
        return json.loads(done.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        raise RuntimeError(f"{python} printed no module list") from None


def row(name, kinds, probes) -> dict:
    """One oracle's row; ``probes`` caches each interpreter's answer."""
    spec = ORACLES[name]
    measured = provenance.MEASURED.get(name, {})
    where = spec.locate()
    out = {
        "oracle": name,
        "kinds": [kind for _, kind in kinds],
        "ids": [i for i, _ in kinds],
        "interpreter": where.path,
        "found_by": where.how,
        "runs": False,
        "problem": where.problem,
        "versions": {},
        "measured": dict(measured),
        "notes": [],
    }
    if where.problem:
        return out
    modules = list(dict.fromkeys([*spec.needs, *measured]))
    key = where.path
    if key not in probes:
        try:
            probes[key] = probe(
                where.path,
                sorted(
                    {m for s in ORACLES.values() for m in s.needs}
                    | {m for v in provenance.MEASURED.values() for m in v}
                ),
            )
        except RuntimeError as exc:
            probes[key] = str(exc)
    found = probes[key]
    if isinstance(found, str):
        out["problem"] = f"oracle {name!r}: {found}"
        return out
    missing = [m for m in spec.needs if not found.get(m, {}).get("found")]
    for module in modules:
        versions = found.get(module, {}).get("versions") or []
        if versions and found.get(module, {}).get("found"):
            out["versions"][module] = versions[0][1]
            if len({v for _, v in versions}) > 1:
                out["notes"].append(
                    f"{module} is installed by {len(versions)} distributions of different versions ("
                    + ", ".join(f"{d} {v}" for d, v in versions)
                    + "): keep one"
                )
    if missing:
        how = HOW.get(where.how, f"from {where.how}")
        out["problem"] = f"oracle {name!r}: {where.path} ({how}) has no {', '.join(missing)}: {spec.how_to_get()}"
        return out
    out["runs"] = True
    for module, want in measured.items():
        have = out["versions"].get(module)
        if have is not None and provenance.differs(have, want):
            out["notes"].append(
                f"{module} {have} here; the goldens and tolerances were measured on {want}: a "
                "difference beyond them may come from the version, not the model"
            )
    return out


def run(args):

    kinds = served()
    names = selected(args.kind, kinds)
    json_path = None if args.json in (None, "-") else user_path(args.json)
    if json_path is not None and not json_path.parent.is_dir():
        raise UsageError(f"--json {args.json}: no directory {json_path.parent}")
    probes = {}
    rows = [row(name, kinds[name], probes) for name in names]
    profile = platform.current()
    result = {
        "lstm_parity": __version__,
        "python": sys.executable,
        "platform_profile": profile.name,
        "platform_source": platform.source(),
        "ok": all(r["runs"] for r in rows),
        "oracles": rows,
    }
    if args.json == "-":
        print(json.dumps(result, indent=1))
    else:
        if json_path is not None:
            json_path.write_text(json.dumps(result, indent=1) + "\n")
        print(f"lstm-ref {__version__} in {sys.executable}; platform profile {profile.name} ({platform.source()})")
        for r in rows:
            print(f"{'ok' if r['runs'] else 'MISSING':8} {r['oracle']:12} {', '.join(r['kinds'])}")
            if r["runs"]:
                versions = ", ".join(f"{m} {v}" for m, v in r["versions"].items()) or "versions unknown"
                print(
                    f"{'':8} {'':12} {r['interpreter']} ({HOW.get(r['found_by'], 'from ' + r['found_by'])}): {versions}"
                )
            else:
                print(f"{'':8} {'':12} {r['problem']}")
            for note in r["notes"]:
                print(f"{'':8} {'':12} note: {note}")
        cannot = [r["oracle"] for r in rows if not r["runs"]]
        print(
            f"{len(rows) - len(cannot)}/{len(rows)} oracles can run"
            + (f"; {', '.join(cannot)} cannot (see above)" if cannot else "")
        )
    return EXIT_PASS if result["ok"] else EXIT_FAIL
