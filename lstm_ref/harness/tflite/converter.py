"""The parent side of the conversion: run ``convert_one.py`` in a subprocess
and turn whatever happens into one :class:`Conversion` per (model, mode).

- the converter wrote the file: ``ok``;
- it raised (an op or mode it refuses): ``unsupported: <its message>``;
- the process died of a signal: ``converter crashed: SIGSEGV in calibration``
  (the signal named by ``signal.Signals(-returncode)``, the phase by the last
  progress marker the child printed, the Python frame from ``faulthandler``
  in ``detail``);
- no progress for ``timeout`` seconds: ``converter hung`` (in that phase);
  the process group is killed.

After a crash or a hang the remaining jobs run in a fresh process, so one
bad mode costs one row.  Each process pays one TF import (about 4 s here):
jobs share a process in the order given (:func:`modes.conversion_order`
puts the modes that may crash last).
"""

import json
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..oracles.client import ROOT

CONVERT_MODULE = "lstm_ref.harness.tflite.convert_one"
_MARKER = re.compile(r"^@@tflite (\S+) (\S+) (\S+)$", re.M)
_QUIET = {"TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONHASHSEED": "0", "CUDA_VISIBLE_DEVICES": ""}


@dataclass
class Conversion:
    """What converting one model in one mode came to."""

    model: str
    mode: str
    status: str  # "ok", "unsupported", "crashed", "hung", "failed" (the process died before this job began)
    message: str = ""  # "" when ok; otherwise the row's text, e.g. "converter crashed: SIGSEGV in calibration"
    path: Path = None  # the .tflite, when ok
    phase: str = ""  # the last phase reached
    seconds: float = 0.0
    bytes: int = 0
    detail: str = ""  # traceback or faulthandler stack
    versions: dict = field(default_factory=dict)

    @property
    def ok(self):
        return self.status == "ok"


@dataclass
class ModelSpec:
    """One Keras model to convert: the LSTM's ``config``, ``x`` (batch, time,
    features), its ``weights`` by short name, and ``rep`` (samples, batch,
    time, features), the representative dataset."""

    id: str
    config: dict
    x: np.ndarray
    weights: dict
    rep: np.ndarray
    return_sequences: bool = True


def _frame(stderr: str) -> str:
    """The innermost Python frame of a faulthandler dump (``file:line in fn``)."""
    m = re.search(r'most recent call first\):\s*\n\s*File "([^"]+)", line (\d+) in (\S+)', stderr)
    if not m:
        return ""
    path = m.group(1)
    short = path.split("site-packages/", 1)[-1]
    return f"{short}:{m.group(2)} in {m.group(3)}"


def _tail(text, n=3000):
    return text[-n:]


def convert(
    models,
    jobs,
    out_dir,
    *,
    legacy: bool,
    timeout: float = 180.0,
    python: str = None,
    module: str = CONVERT_MODULE,
    env: dict = None,
) -> dict:
    """Convert ``jobs`` ((model id, mode name) pairs, run in that order) of
    ``models`` (:class:`ModelSpec` by id) under Keras 3 or tf_keras
    (``legacy``); ``{(model id, mode): Conversion}``, one per job, whatever
    happened.  ``timeout``: seconds without progress before a process is
    called hung."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    desc = {}
    for spec in models.values():
        path = out_dir / f"{spec.id}.inputs.npz"
        np.savez(
            path,
            x=np.asarray(spec.x, np.float32),
            rep=np.asarray(spec.rep, np.float32),
            **{f"w:{k}": np.asarray(v, np.float32) for k, v in spec.weights.items()},
        )
        desc[spec.id] = {"config": spec.config, "arrays": str(path), "return_sequences": spec.return_sequences}
    pending = [tuple(j) for j in jobs]
    results = {}
    attempt = 0
    while pending:
        attempt += 1
        results.update(_one_process(desc, pending, out_dir, attempt, legacy, timeout, python, module, env))
        pending = [j for j in pending if j not in results]
    return results


def _one_process(desc, pending, out_dir, attempt, legacy, timeout, python, module, env):
    spec_path = out_dir / f"spec.{attempt}.json"
    for model_id, mode in pending:  # nothing stale is read back as this run's result
        for suffix in ("json", "tflite"):
            (out_dir / f"{model_id}.{mode}.{suffix}").unlink(missing_ok=True)
    spec_path.write_text(
        json.dumps({"out_dir": str(out_dir), "models": desc, "jobs": [{"model": m, "mode": k} for m, k in pending]})
    )
    stdout_path, stderr_path = out_dir / f"stdout.{attempt}.txt", out_dir / f"stderr.{attempt}.txt"
    environment = {
        **os.environ,
        **_QUIET,
        "PYTHONPATH": str(ROOT),
        "TF_USE_LEGACY_KERAS": "1" if legacy else "0",
        **(env or {}),
    }
    with open(stdout_path, "w") as out, open(stderr_path, "w") as err:
        proc = subprocess.Popen(
            [python or sys.executable, "-u", "-m", module, str(spec_path)],
            stdout=out,
            stderr=err,
            env=environment,
            cwd=ROOT,
            start_new_session=True,
        )
        last_progress, seen, hung = time.monotonic(), 0, False
        while proc.poll() is None:
            time.sleep(0.05)
            size = stdout_path.stat().st_size
            if size != seen:
                seen, last_progress = size, time.monotonic()
            elif time.monotonic() - last_progress > timeout:
                hung = True
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
    rc = proc.returncode
    stdout, stderr = stdout_path.read_text(errors="replace"), stderr_path.read_text(errors="replace")
    markers = _MARKER.findall(stdout)
    results = {}
    for model_id, mode in pending:
        path = out_dir / f"{model_id}.{mode}.json"
        if path.exists():
            r = json.loads(path.read_text())
            ok = r["status"] == "ok"
            results[(model_id, mode)] = Conversion(
                model_id,
                mode,
                r["status"],
                "" if ok else f"unsupported: {r['message']}",
                out_dir / f"{model_id}.{mode}.tflite" if ok else None,
                phase="written" if ok else "",
                seconds=r.get("seconds", 0.0),
                bytes=r.get("bytes", 0),
                detail=r.get("detail", ""),
                versions=r.get("versions", {}),
            )
    if rc == 0 and not hung:
        return results
    # The job that was running when the process died is the last one with a marker.
    culprit = (markers[-1][0], markers[-1][1]) if markers else None
    phase = markers[-1][2] if markers else "start-up"
    if culprit is None or culprit in results or culprit not in pending:
        # Died outside any job (start-up: TF failed to import, a bad spec): every pending job fails.
        why = "hung" if hung else (f"crashed: {signal.Signals(-rc).name}" if rc < 0 else f"exited with code {rc}")
        for job in pending:
            if job not in results:
                results[job] = Conversion(
                    job[0], job[1], "failed", f"converter process {why} in {phase}", phase=phase, detail=_tail(stderr)
                )
        return results
    if hung:
        results[culprit] = Conversion(
            *culprit,
            "hung",
            f"converter hung: no progress for {timeout:.0f}s in {phase}",
            phase=phase,
            detail=_tail(stderr),
        )
    elif rc < 0:
        name = signal.Signals(-rc).name
        frame = _frame(stderr)
        results[culprit] = Conversion(
            *culprit,
            "crashed",
            f"converter crashed: {name} in {phase}",
            phase=phase,
            detail=(frame + "\n" if frame else "") + _tail(stderr),
        )
    else:  # a Python-level exit outside the per-job handler
        results[culprit] = Conversion(
            *culprit, "crashed", f"converter crashed: exit code {rc} in {phase}", phase=phase, detail=_tail(stderr)
        )
    return results
