"""Start oracle workers, send them requests, restart them when they die.

Each oracle runs in its own interpreter and environment (``ORACLES``), pays
TensorFlow's start-up once, and then answers many requests.  A worker that
crashes or does not answer within ``timeout`` seconds is killed; the request
fails with :class:`OracleError` and the next request starts a fresh worker.
"""

import hashlib
import importlib.util
import os
import re
import selectors
import subprocess
import sys
import tempfile
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


# A clone (``make venvs``, the suite) or an installed package: the repo's
# .venv-<name> interpreters exist only in a clone.
CLONE = (ROOT / "pyproject.toml").is_file() and (ROOT / "lstm_ref").is_dir()


@dataclass(frozen=True)
class Interpreter:
    """Where an oracle's worker runs: ``path``, found ``how`` ("$VAR",
    "current" or "venv"), and ``problem`` (None, or why it cannot run)."""

    path: str
    how: str
    problem: str = None


@dataclass(frozen=True)
class OracleSpec:
    """An oracle: its worker ``module``, the interpreter it runs in and how
    that one is found (``locate``).

    ``python`` is the repo's interpreter for it ("sys.executable": none of
    its own; a relative path is from the repo root, e.g. .venv-torch/bin/python,
    built by ``make venv-torch``); ``needs`` the top-level modules its worker
    imports (the framework); ``extra`` the lstm-parity extra that brings them
    and ``pip`` the packages themselves, for the message that says how to get
    them."""

    name: str
    module: str
    python: str
    env: dict = field(default_factory=dict)
    needs: tuple = ()
    extra: str = ""
    pip: str = ""

    @property
    def env_var(self) -> str:
        return f"LSTM_PARITY_{self.name.upper()}_PYTHON"

    def missing_here(self) -> list:
        """The modules of ``needs`` this interpreter cannot import (found
        by ``importlib.util.find_spec``: nothing is imported)."""
        missing = []
        for module in self.needs:
            try:
                found = importlib.util.find_spec(module) is not None
            except (ImportError, ValueError):
                found = False
            if not found:
                missing.append(module)
        return missing

    def locate(self) -> Interpreter:
        """The interpreter the worker runs in, first of: ``$LSTM_PARITY_<NAME>_PYTHON``
        (an explicit override); this interpreter, when every module of
        ``needs`` is importable here; the repo's venv for it (a clone's
        ``.venv-<name>``).  ``problem`` says what is missing and how to get it."""
        override = os.environ.get(self.env_var)
        if override:
            if not Path(override).exists():
                return Interpreter(
                    override,
                    f"${self.env_var}",
                    f"oracle {self.name!r}: interpreter {override} "
                    f"(from ${self.env_var}) not found; {self.how_to_get()}",
                )
            return Interpreter(override, f"${self.env_var}")
        missing = self.missing_here()
        if self.python == "sys.executable" or (self.needs and not missing):
            problem = self.unavailable(missing) if missing else None
            return Interpreter(sys.executable, "current", problem)
        venv = Path(self.python) if Path(self.python).is_absolute() else ROOT / self.python
        if venv.exists() and (CLONE or Path(self.python).is_absolute()):
            return Interpreter(str(venv), "venv")
        if self.needs:
            return Interpreter(str(venv), "missing", self.unavailable(missing))
        return Interpreter(
            str(venv), "missing", f"oracle {self.name!r}: interpreter {venv} not found; {self.how_to_get()}"
        )

    def interpreter(self) -> str:
        return self.locate().path

    def make_target(self) -> str:
        """The Makefile target that builds the repo's interpreter for it."""
        if self.python == "sys.executable":
            return "venv"
        return Path(self.python).parts[0].lstrip(".") if not Path(self.python).is_absolute() else "venvs"

    def how_to_get(self) -> str:
        clone = f"run `make {self.make_target()}` in a clone of lstm-parity"
        if self.extra:
            return f"pip install 'lstm-parity[{self.extra}]' (or {self.pip}), or {clone}"
        if self.pip:
            return f"{clone}, or set {self.env_var} to a Python that has {self.pip}"
        return clone

    def unavailable(self, missing=None) -> str:
        """The message of an oracle whose framework is not here."""
        missing = self.missing_here() if missing is None else missing
        return f"oracle {self.name!r} needs {', '.join(missing or self.needs)}: {self.how_to_get()}"


_LEGACY = {"TF_USE_LEGACY_KERAS": "1"}  # tf.compat.v1 cells need tf_keras, set before TF loads
_TF = ("tensorflow", "keras")
_TF2 = ("tensorflow", "tf_keras")
_TF_PIP = "tensorflow tf_keras"

ORACLES = {
    # Which kind each oracle serves is said by the kind's record (records.py).
    "keras3": OracleSpec(
        "keras3", "lstm_ref.harness.oracles.keras3_worker", "sys.executable", {}, _TF, "tensorflow", "tensorflow"
    ),
    "tf1": OracleSpec(
        "tf1", "lstm_ref.harness.oracles.tf1_worker", "sys.executable", _LEGACY, _TF2, "tensorflow", _TF_PIP
    ),
    "tf_keras": OracleSpec(
        "tf_keras", "lstm_ref.harness.oracles.tf_keras_worker", "sys.executable", _LEGACY, _TF2, "tensorflow", _TF_PIP
    ),
    "contrib": OracleSpec(
        "contrib", "lstm_ref.harness.oracles.contrib_worker", "sys.executable", _LEGACY, _TF2, "tensorflow", _TF_PIP
    ),
    # tensorflow-addons needs TF <= 2.15: never beside the TF of the others, so no extra.
    "tfa": OracleSpec(
        "tfa",
        "lstm_ref.harness.oracles.tfa_worker",
        ".venv-tfa/bin/python",
        {},
        ("tensorflow", "tensorflow_addons"),
        "",
        "'tensorflow-cpu==2.15.1' tensorflow-addons 'numpy<2'",
    ),
    "torch": OracleSpec(
        "torch", "lstm_ref.harness.oracles.torch_worker", ".venv-torch/bin/python", {}, ("torch",), "torch", "torch"
    ),
    "onnxruntime": OracleSpec(
        "onnxruntime",
        "lstm_ref.harness.oracles.onnx_worker",
        ".venv-onnx/bin/python",
        {},
        ("onnxruntime", "onnx"),
        "onnx",
        "onnxruntime onnx",
    ),
    "litert": OracleSpec(
        "litert",
        "lstm_ref.harness.oracles.litert_worker",
        ".venv-litert/bin/python",
        {},
        ("ai_edge_litert",),
        "tflite",
        "ai-edge-litert",
    ),
    # Keras 3 on its other backends (lstm_ref/harness/backends.py), CPU: one
    # worker module, the backend chosen by KERAS_BACKEND; float64 needs JAX's x64.
    "keras3_jax": OracleSpec(
        "keras3_jax",
        "lstm_ref.harness.oracles.keras_backend_worker",
        ".venv-jax/bin/python",
        {"KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu", "JAX_ENABLE_X64": "1"},
        ("keras", "jax"),
        "keras-jax",
        "keras jax",
    ),
    "keras3_torch": OracleSpec(
        "keras3_torch",
        "lstm_ref.harness.oracles.keras_backend_worker",
        ".venv-torch/bin/python",
        {"KERAS_BACKEND": "torch"},
        ("keras", "torch"),
        "keras-torch",
        "keras torch",
    ),
    # flax.nnx's LSTM cells under nnx.RNN (JAX, CPU), in .venv-jax.
    "flax": OracleSpec(
        "flax", "lstm_ref.harness.oracles.flax_worker", ".venv-jax/bin/python", {}, ("jax", "flax"), "flax", "flax"
    ),
}


def import_root() -> Path:
    """What the worker's PYTHONPATH and working directory are: the clone, or
    (an installed package) a folder holding only a link to ``lstm_ref``, so
    that a worker in another interpreter imports lstm_ref and nothing else
    of this one's site-packages."""
    if CLONE:
        return ROOT
    package = ROOT / "lstm_ref"
    digest = hashlib.sha1(str(package).encode()).hexdigest()[:12]
    shim = Path(tempfile.gettempdir()) / f"lstm-parity-{os.getuid()}-{digest}"
    link = shim / "lstm_ref"
    if not link.exists():
        shim.mkdir(parents=True, exist_ok=True)
        try:
            link.symlink_to(package, target_is_directory=True)
        except FileExistsError:
            pass
    return shim


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
        where = self.spec.locate()
        if where.problem:
            raise OracleUnavailable(where.problem)
        python = where.path
        root = import_root()
        env = {**os.environ, **_QUIET, **self.spec.env, "PYTHONPATH": str(root)}
        self.served = 0
        self.proc = subprocess.Popen(
            [python, "-u", "-m", self.spec.module],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            cwd=root,
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
                module = missing.group(1).split(".")[0]
                how = self.spec.how_to_get() if module in self.spec.needs else "reinstall it"
                raise OracleUnavailable(
                    f"oracle {self.spec.name!r}: its interpreter {python} ({where.how}) has no module "
                    f"{missing.group(1)!r}: {how}"
                ) from None
            raise

    def _died(self, how) -> OracleError:
        """The error for a worker that exited (or closed its pipes): its
        exit code and the end of its stderr, read to the end first (a
        worker that fails at import writes its traceback just before it
        exits, after the client saw its stdout close)."""
        try:
            code = self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            code = "unknown: closed its output but is still running"
        self._drain_stderr(deadline=time.monotonic() + 5)
        tail = self.stderr_tail()
        last = next((line.strip() for line in reversed(tail.splitlines()) if line.strip()), "")
        reason = f": {last}" if last else ", writing nothing to stderr"  # the first line is what the CLI prints
        return OracleError(f"oracle {self.spec.name!r} {how} (code {code}){reason}; stderr tail:\n{tail}")

    def _drain_stderr(self, deadline):
        stream = self.proc.stderr if self.proc is not None else None
        if stream is None or stream.closed:
            return
        sel = selectors.DefaultSelector()
        try:
            sel.register(stream, selectors.EVENT_READ)
            while (left := deadline - time.monotonic()) > 0 and sel.select(left):
                data = os.read(stream.fileno(), 65536)
                if not data:
                    break
                self._keep_stderr(data)
        except (OSError, ValueError):
            pass
        finally:
            sel.close()

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
                        if data:
                            self._keep_stderr(data)
                        else:  # its end: at EOF it stays readable, and empty reads must not push the tail out
                            sel.unregister(self.proc.stderr)
                        continue
                    if not data:
                        raise self._died("exited")
                    chunks.append(data)
                    got += len(data)
        finally:
            sel.close()
        return b"".join(chunks)

    def _keep_stderr(self, data, keep=50):
        self._stderr.append(data)
        del self._stderr[:-keep]

    def stderr_tail(self, n=2000):
        return b"".join(self._stderr).decode(errors="replace")[-n:]

    def _exchange(self, meta, arrays, timeout, profile=True):
        deadline = time.monotonic() + timeout
        try:
            self.proc.stdin.write(protocol.encode(meta, arrays))
            self.proc.stdin.flush()
            body = protocol.read_frame(lambda n: self._read_exactly(n, deadline))
        except OracleError:
            self.close()
            raise
        except (BrokenPipeError, OSError) as exc:  # it died before reading the request
            error = self._died(f"exited before reading the request ({exc})")
            self.close()
            raise error from exc
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
