"""Start oracle workers, send them requests, restart them when they die.

Each oracle runs in its own interpreter and environment (``ORACLES``), pays
TensorFlow's start-up once, and then answers many requests.  A worker that
crashes or does not answer within ``timeout`` seconds is killed; the request
fails with :class:`OracleError` and the next request starts a fresh worker.
"""

import os
import re
import selectors
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from lstm_ref.platform import detect, get

from . import protocol

ROOT = Path(__file__).resolve().parents[3]


class OracleError(RuntimeError):
    """The oracle worker failed, crashed or timed out."""


class OracleUnavailable(OracleError):
    """The oracle's environment is not installed here."""


class OracleInputError(OracleError, ValueError):
    """The worker refused the request itself (``protocol.UserError``): the
    message is for the user, e.g. "input 'x' expects 3 dims, got 2"."""


@dataclass(frozen=True)
class OracleSpec:
    name: str
    module: str
    python: str  # interpreter path; relative paths are from the repo root
    env: dict = field(default_factory=dict)

    def interpreter(self) -> str:
        override = os.environ.get(f"LSTM_PARITY_{self.name.upper()}_PYTHON")
        if override:
            return override
        if self.python == "sys.executable":
            return sys.executable
        return str(ROOT / self.python)


_LEGACY = {"TF_USE_LEGACY_KERAS": "1"}  # tf.compat.v1 cells need tf_keras, set before TF loads

ORACLES = {
    # Which kind each oracle serves is said by the kind's record (records.py).
    "keras3": OracleSpec("keras3", "lstm_ref.harness.oracles.keras3_worker", "sys.executable"),
    "tf1": OracleSpec("tf1", "lstm_ref.harness.oracles.tf1_worker", "sys.executable", _LEGACY),
    "tf_keras": OracleSpec("tf_keras", "lstm_ref.harness.oracles.tf_keras_worker", "sys.executable", _LEGACY),
    "contrib": OracleSpec("contrib", "lstm_ref.harness.oracles.contrib_worker", "sys.executable", _LEGACY),
    "tfa": OracleSpec("tfa", "lstm_ref.harness.oracles.tfa_worker", ".venv-tfa/bin/python"),
    "torch": OracleSpec("torch", "lstm_ref.harness.oracles.torch_worker", ".venv-torch/bin/python"),
    "onnxruntime": OracleSpec("onnxruntime", "lstm_ref.harness.oracles.onnx_worker", ".venv-onnx/bin/python"),
    "litert": OracleSpec("litert", "lstm_ref.harness.oracles.litert_worker", ".venv-litert/bin/python"),
}

_QUIET = {"TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONHASHSEED": "0", "CUDA_VISIBLE_DEVICES": ""}


class Oracle:
    """One worker process; ``request`` is synchronous.

    The worker is recycled after ``max_requests`` requests: frameworks leak a
    little per built layer even after clearing their session (tfa on TF
    2.15, building a layer per request: +97 MB over 600 requests), and a
    fresh process costs one TF start-up (3-5 s) per ``max_requests``
    examples.  Workers cache built layers (memory.LayerCache) and traces
    (traced.py), which a restart throws away; at 500 requests the restarts
    were a fifth of ``make bench``'s time per example.  Over 2000 requests
    ``make bench`` measured a worker's peak growth at +1 MB (ONNX Runtime),
    +17 to +76 MB (Keras, contrib), +172 to +320 MB (TF1, its traces),
    +215 MB (torch: its kernel caches, flat after 2000) and +311 MB (tfa, its
    traces)."""

    def __init__(self, spec: OracleSpec, timeout: float = 300.0, max_requests: int = 2000):
        self.spec = spec
        self.timeout = timeout
        self.max_requests = max_requests
        self.served = 0
        # The worker's profile, summed over this client's requests: seconds
        # per phase its handlers mark (protocol.mark) and "worker start" (a
        # start and its hello), how many requests had each, and the seconds
        # from sending a request to decoding its reply (starts apart).
        self.phases, self.phase_counts, self.seconds = {}, {}, 0.0
        self.proc = None
        self.info = None  # the worker's hello: versions and provenance

    def _start(self):
        python = self.spec.interpreter()
        if not Path(python).exists():
            raise OracleUnavailable(f"oracle {self.spec.name!r}: interpreter {python} not found (run `make venvs`)")
        env = {**os.environ, **_QUIET, **self.spec.env, "PYTHONPATH": str(ROOT)}
        self.served = 0
        self.proc = subprocess.Popen(
            [python, "-u", "-m", self.spec.module],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            env=env, cwd=ROOT,
        )
        self._stderr = []
        started = time.monotonic()
        try:
            self.info = self._exchange({"op": "hello"}, {}, timeout=max(self.timeout, 300), profile=False)[0]
            self.phases["worker start"] = self.phases.get("worker start", 0.0) + time.monotonic() - started
            self.phase_counts["worker start"] = self.phase_counts.get("worker start", 0) + 1
        except OracleError as exc:
            missing = re.search(r"ModuleNotFoundError: No module named '([^']+)'", str(exc))
            if missing:
                raise OracleUnavailable(
                    f"oracle {self.spec.name!r}: its environment ({python}) has no module {missing.group(1)!r}; "
                    "`make venvs` builds it") from None
            raise

    def _read_exactly(self, n, deadline):
        chunks, got = [], 0
        sel = selectors.DefaultSelector()
        sel.register(self.proc.stdout, selectors.EVENT_READ)
        sel.register(self.proc.stderr, selectors.EVENT_READ)
        try:
            while got < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise OracleError(f"oracle {self.spec.name!r} did not answer within {self.timeout:.0f}s")
                for key, _ in sel.select(left):
                    data = os.read(key.fileobj.fileno(), (n - got) if key.fileobj is self.proc.stdout else 65536)
                    if key.fileobj is self.proc.stderr:
                        self._stderr.append(data)
                        del self._stderr[:-50]
                        continue
                    if not data:
                        try:
                            code = self.proc.wait(timeout=5)
                        except subprocess.TimeoutExpired:
                            code = "unknown: closed its output but is still running"
                        raise OracleError(
                            f"oracle {self.spec.name!r} exited (code {code}); stderr tail:\n{self.stderr_tail()}"
                        )
                    chunks.append(data)
                    got += len(data)
        finally:
            sel.close()
        return b"".join(chunks)

    def stderr_tail(self, n=2000):
        return b"".join(self._stderr).decode(errors="replace")[-n:]

    def _exchange(self, meta, arrays, timeout, profile=True):
        deadline = time.monotonic() + timeout
        try:
            self.proc.stdin.write(protocol.encode(meta, arrays))
            self.proc.stdin.flush()
            body = protocol.read_frame(lambda n: self._read_exactly(n, deadline))
        except (OracleError, BrokenPipeError, OSError) as exc:
            self.close()
            if isinstance(exc, OracleError):
                raise
            raise OracleError(f"oracle {self.spec.name!r} pipe broke: {exc}") from exc
        try:
            reply, out = protocol.decode(body)
        except ValueError as exc:
            self.close()
            raise OracleError(f"oracle {self.spec.name!r} sent a reply that cannot be read: {exc}") from exc
        phases = reply.pop("phases", {})
        if profile:
            self.seconds += time.monotonic() - (deadline - timeout)
            for phase, seconds in phases.items():
                self.phases[phase] = self.phases.get(phase, 0.0) + seconds
                self.phase_counts[phase] = self.phase_counts.get(phase, 0) + 1
        if "user_error" in reply:
            raise OracleInputError(reply["user_error"])
        if "error" in reply:
            raise OracleError(f"oracle {self.spec.name!r} failed on {meta.get('op')!r}:\n{reply['error']}")
        return reply, out

    def request(self, meta: dict, arrays: dict):
        if self.proc is not None and self.served >= self.max_requests:
            self.close()
        if self.proc is None or self.proc.poll() is not None:
            self._start()
        self.served += 1
        return self._exchange(meta, arrays, self.timeout)

    def hello(self) -> dict:
        if self.proc is None or self.proc.poll() is not None:
            self._start()
        return self.info

    @property
    def platform(self):
        """The :mod:`~lstm_ref.platform` profile the worker computes on (its
        own CPU and ``TF_ENABLE_ONEDNN_OPTS``, from its hello)."""

        profile = self.hello().get("platform_profile")
        return get(profile) if profile else detect(onednn=self.spec.env.get("TF_ENABLE_ONEDNN_OPTS"))

    def run(self, case, cross_check=False):
        """The real framework's outputs on ``case`` (a :class:`lstm_ref.case.Case`):
        every field its family declares, e.g. per-step h, c and the final
        states (``cross_check``: ask the worker to re-run the framework's own
        layer and compare, where it samples that).  A case with no
        ``platform`` gets the worker's: its outputs were computed there."""
        if case.platform is None:
            case.platform = self.platform
        meta = {"op": "run", "kind": case.kind, "config": case.config, "cross_check": cross_check}
        reply, out = self.request(meta, case.arrays())
        return out

    def close(self):
        if self.proc is not None:
            try:
                self.proc.kill()
                self.proc.wait(timeout=10)
            except OSError:
                pass
            for stream in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
                try:
                    stream.close()
                except OSError:
                    pass
        self.proc = None
