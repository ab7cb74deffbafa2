"""The base class every cell reference derives from, and the kind registry.

A subclass states its config keys, its weight shapes and its equations
(``project_input`` + ``recurrence``); this module does the validation that is
the same for every kind, so that bad input fails the same way everywhere.
"""

import importlib
from typing import ClassVar

import numpy as np

from . import grad as G
from .dtypes import resolve_policy
from .errors import ConfigError, InputError, WeightError
from .platform import resolve as resolve_platform
from .runner import is_right_padded, run_sequence, split_gates  # noqa: F401  (split_gates: the families import it from here)
from .trace import Trace

REGISTRY: dict = {}

# The cell families this package ships, one module each; each registers its
# kinds with ``@register`` when imported.  Loaded on first use, so that a
# worker importing ``lstm_ref.harness.oracles.protocol`` loads none of them.
FAMILIES = ("keras_lstm", "tf_keras_lstm", "tf1_cells", "layer_norm_cells", "torch_lstm", "onnx_lstm", "flax_lstm")


def load_families():
    """Import every family module (a failing one raises) and return the registry."""
    for name in FAMILIES:
        importlib.import_module(f"{__package__}.{name}")
    return REGISTRY


# Keras cell kwargs with no effect on the forward numbers once the weights are
# given: names, initializers, regularizers, constraints, and dropout (off at
# inference).
KERAS_CELL_INERT = frozenset(
    {
        "name",
        "trainable",
        "seed",
        "unit_forget_bias",
        "kernel_initializer",
        "recurrent_initializer",
        "bias_initializer",
        "kernel_regularizer",
        "recurrent_regularizer",
        "bias_regularizer",
        "kernel_constraint",
        "recurrent_constraint",
        "bias_constraint",
        "dropout",
        "recurrent_dropout",
    }
)

_OMIT = object()


def register(cls):
    """Class decorator: make ``cls`` reachable as ``from_config(cls.kind, ...)``."""
    REGISTRY[cls.kind] = cls
    return cls


def from_config(kind: str, config: dict, *, platform=None):
    """Build the reference for TF class path ``kind`` from its constructor
    kwargs.  ``platform`` names the :mod:`~lstm_ref.platform` profile whose
    numbers to reproduce (default: this machine's, or ``LSTM_PARITY_PLATFORM``)."""
    if kind not in REGISTRY:
        load_families()  # the families register themselves on import
    try:
        cls = REGISTRY[kind]
    except (KeyError, TypeError):
        raise ConfigError(f"unknown kind {kind!r}; expected one of {sorted(REGISTRY)}") from None
    return cls(config, platform=platform)


class Reference:
    """A NumPy LSTM that mirrors one TF class, built from that class's kwargs.

    Subclasses set:
      kind      the TF class path;
      OPTIONS   {config key: default} for keys that change the forward numbers;
      INERT     keys accepted because TF accepts them, with no effect on the
                forward numbers at inference (names, initializers, ...);
    and implement ``_configure``, ``weight_shapes``, ``project_input`` and
    ``recurrence`` (``step`` is their composition).
    """

    kind: ClassVar[str]
    OPTIONS: ClassVar[dict]
    INERT: ClassVar[frozenset]
    REFUSED: ClassVar[dict] = {}  # key -> (predicate on value, reason)
    zero_output_for_mask = False
    go_backwards = False
    # What the family carries and what a run returns; nothing downstream
    # hard-codes h or c.  STATE is the carried state in the order
    # ``recurrence`` takes and returns it (given to ``run`` as ``<name>0``);
    # OUTPUT names the per-step output, TRACED_STATES the states recorded
    # at every step.  A trace holds OUTPUT, TRACED_STATES and
    # ``final_<state>`` for every state (see :meth:`fields`).
    # The gate blocks' letters in the framework's own order (TF1's i, j, f, o;
    # Keras' i, f, c, o; ...), for naming a port that reads them in another.
    GATES: ClassVar[str] = "ifco"
    STATE: ClassVar[tuple] = ("h", "c")
    TRACED_STATES: ClassVar[tuple] = ("c",)
    OUTPUT: ClassVar[str] = "h"

    def __init__(self, config: dict, *, platform=None):
        self.platform = resolve_platform(platform)
        if not isinstance(config, dict):
            raise ConfigError(f"{self.kind}: config must be a dict of constructor kwargs, got {type(config).__name__}")
        unknown = sorted(set(config) - set(self.OPTIONS) - set(self.INERT))
        if unknown:
            raise ConfigError(
                f"{self.kind}: unknown config key(s) {unknown}; expected a subset of "
                f"{sorted(set(self.OPTIONS) | set(self.INERT))}"
            )
        for key, (refuse, reason) in self.REFUSED.items():
            if key in config and refuse(config[key]):
                raise ConfigError(f"{self.kind}: config[{key!r}]={config[key]!r} is not supported: {reason}")
        self.config = dict(config)
        self.options = {**self.OPTIONS, **{k: v for k, v in config.items() if k in self.OPTIONS}}
        self.policy = resolve_policy(config.get("dtype"))
        self._configure(self.options)

    # -- to be provided by each family -------------------------------------
    units: int
    out_units: int

    def _configure(self, options):  # pragma: no cover - abstract
        raise NotImplementedError

    def weight_shapes(self, input_dim: int) -> dict:  # pragma: no cover - abstract
        raise NotImplementedError

    def project_input(self, params, x):  # pragma: no cover - abstract
        raise NotImplementedError

    def recurrence(self, params, xz_t, state):  # pragma: no cover - abstract
        raise NotImplementedError

    def step(self, params, x_t, state):
        """One time step: ``(output, state)`` from ``x_t`` and ``state``
        (tuples in ``STATE`` order)."""
        return self.recurrence(params, self.project_input(params, x_t), state)

    @classmethod
    def fields(cls) -> tuple:
        """The fields of a trace: per-step output, per-step traced states,
        then every final state."""
        return (cls.OUTPUT, *cls.TRACED_STATES, *(f"final_{s}" for s in cls.STATE))

    def gate_blocks(self, name: str, shape: tuple):
        """Where weight ``name`` holds its gate blocks: ``(axis, groups)``
        (``groups`` runs of 4 blocks side by side), or None for a weight
        without gate blocks.  Default: the last axis, when it is 4 * units."""
        return (len(shape) - 1, 1) if shape and shape[-1] == 4 * self.units else None

    def state_width(self, name: str) -> int:
        """Width of carried state ``name``: the output width for h, the cell
        width for everything else (override for other states)."""
        return self.out_units if name == "h" else self.units

    # -- shared validation and the public entry point ----------------------
    def _positive_int(self, key):
        value = self.options[key]
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
            raise ConfigError(f"{self.kind}: config[{key!r}] must be a positive integer, got {value!r}")
        return int(value)

    def _dropout_rates(self):
        """Keras' dropout/recurrent_dropout: inert at inference, but a value
        Keras would reject is still refused."""
        for key in ("dropout", "recurrent_dropout"):
            value = self.config.get(key, 0)
            if (
                isinstance(value, bool)
                or not isinstance(value, (int, float, np.integer, np.floating))
                or not 0 <= value <= 1
            ):
                raise ConfigError(f"{self.kind}: config[{key!r}] must be a number in [0, 1], got {value!r}")

    def _bool(self, key):
        value = self.options[key]
        if not isinstance(value, (bool, np.bool_)):
            raise ConfigError(f"{self.kind}: config[{key!r}] must be True or False, got {value!r}")
        return bool(value)

    def _real_array(self, what, value, error):
        arr = np.asarray(value)
        if arr.dtype.kind not in "fiu":
            raise error(f"{self.kind}: {what} must be a real numeric array, got dtype {arr.dtype}")
        return arr

    def params(self, weights: dict, input_dim: int, dtype) -> dict:
        """Validate ``weights`` against TF's variable names and shapes and cast
        them, as TF's variables would hold them, to ``dtype``."""
        if not isinstance(weights, dict):
            raise WeightError(
                f"{self.kind}: weights must be a dict keyed by TF variable name, got {type(weights).__name__}"
            )
        expected = self.weight_shapes(input_dim)
        unknown = sorted(set(weights) - set(expected))
        if unknown:
            raise WeightError(f"{self.kind}: unknown weight(s) {unknown}; expected exactly {sorted(expected)}")
        missing = sorted(set(expected) - set(weights))
        if missing:
            raise WeightError(f"{self.kind}: missing weight(s) {missing}; expected exactly {sorted(expected)}")
        out = {}
        for name, shape in expected.items():
            arr = self._real_array(f"weight {name!r}", weights[name], WeightError)
            if arr.shape != shape:
                raise WeightError(
                    f"{self.kind}: weight {name!r} has shape {arr.shape}, expected {shape} "
                    f"(units={self.units}, x features={input_dim})"
                )
            # Variables hold the policy's variable dtype; layers cast at use.
            out[name] = arr.astype(self.policy.variable, copy=False).astype(dtype, copy=False)
        return out

    def state_shape(self, name: str, batch: int) -> tuple:
        """Shape of carried state ``name`` (``h0=``/``final_h``): ``(batch,
        width)``; kinds that stack it per layer and direction override."""
        return (batch, self.state_width(name))

    STATE_SHAPE_DOC = "(batch, {width})"  # how error messages spell state_shape

    def _state(self, name, value, batch, dtype):
        shape = self.state_shape(name[:-1], batch)
        if value is None:
            return np.zeros(shape, dtype=dtype)
        arr = self._real_array(name, value, InputError)
        if arr.shape != shape:
            spelled = self.STATE_SHAPE_DOC.format(width=shape[-1])
            raise InputError(f"{self.kind}: {name} has shape {arr.shape}, expected {spelled} = {shape}")
        return arr.astype(self.policy.compute, copy=False).astype(dtype, copy=False)

    def _mask(self, mask, batch, time):
        if mask is None:
            return None
        arr = np.asarray(mask)
        if arr.dtype != np.bool_:
            if arr.dtype.kind not in "iu" or not np.isin(arr, (0, 1)).all():
                raise InputError(f"{self.kind}: mask must be a bool array (or 0/1 integers), got dtype {arr.dtype}")
            arr = arr.astype(bool)
        if arr.shape != (batch, time):
            raise InputError(f"{self.kind}: mask has shape {arr.shape}, expected (batch, time) = {(batch, time)}")
        return arr

    def _check_mask(self, mask):
        """Hook: families whose TF API cannot express some masks refuse them."""

    def _require_right_padded(self, mask, why):
        """Refuse a mask a sequence length cannot express, naming the rows."""
        if mask is None:
            return
        bad = np.flatnonzero(~is_right_padded(mask))
        if bad.size:
            raise InputError(f"{self.kind}: mask row(s) {bad.tolist()} are not right-padded (True then False); {why}")

    def _x(self, x):
        """``x`` as a real (batch, time, features) array with a row and a step, or an InputError."""
        x = self._real_array("x", x, InputError)
        if x.ndim != 3:
            raise InputError(f"{self.kind}: x must be 3-D (batch, time, features), got shape {x.shape}")
        if x.shape[0] == 0 or x.shape[1] == 0:
            raise InputError(f"{self.kind}: x must have at least one row and one step, got shape {x.shape}")
        return x

    def float64_config(self) -> dict:
        """The config under which TF, run in float64, computes what oracle
        mode computes: the same kwargs with ``dtype="float64"``, and any
        constant the reference rounds to the compute dtype (as TF does)
        given already rounded."""
        return {**self.config, "dtype": "float64"}

    def run(self, x, weights, *, mask=None, oracle=False, teacher=None, **initial_state):
        """Run the reference and return a :class:`~lstm_ref.trace.Trace`.

        ``initial_state`` gives every carried state as ``<name>0`` (``h0=``,
        ``c0=`` for the LSTM families), all of them or none; ``mask`` is
        (batch, time) in input order.  ``oracle=True`` computes in float64
        from inputs first rounded to the layer's compute dtype, which
        separates TF's own rounding from a semantic difference.

        ``teacher`` forces the state: ``{name: (batch, time, width)}`` for
        every carried state, as the framework reached it after each step (in
        the trace's layout), and each step then starts from the teacher's
        state of the step before instead of the reference's own (teacher
        forcing).  The trace then holds one step's error alone, with no
        error carried over from earlier steps: what a ulp-level claim about
        one step's arithmetic needs.  Every step must be valid (no mask).
        """
        x = self._x(x)
        batch, time, features = x.shape
        dtype = np.dtype(np.float64) if oracle else self.policy.compute
        state0 = self._initial_state(initial_state, batch, dtype)
        params = self.params(weights, features, dtype)
        mask = self._mask(mask, batch, time)
        self._check_mask(mask)
        xs = x.astype(self.policy.compute, copy=False).astype(dtype, copy=False)
        if teacher is not None:
            return run_sequence(self._teacher(teacher, mask, xs.shape, dtype), params, xs, state0, mask)
        return self._run(params, xs, state0, mask)

    # Whether this class (not a subclass that changes its forward) has a
    # backward: ``grad`` reads it from the class itself.
    GRAD: ClassVar[bool] = False

    def grad(self, x, weights, upstream, *, mask=None, **initial_state):
        """dL/d(everything) for ``L = sum(field * upstream[field])`` over the
        trace fields in ``upstream`` (see :mod:`lstm_ref.grad`): a
        :class:`~lstm_ref.grad.GradResult` with ``x``, ``h0``/``c0``,
        ``weights`` (keyed as ``run`` takes them) and the per-step
        ``steps``.  Inputs are validated and rounded as ``run`` does; the
        forward and the backward run in float64 (``run(oracle=True)``)."""
        if not type(self).__dict__.get("GRAD", False):
            raise ConfigError(f"{self.kind}: grad is not implemented for this kind")
        x = self._x(x)
        batch, time, features = x.shape
        if not isinstance(upstream, dict):
            raise InputError(
                f"{self.kind}: upstream must be a dict {{field: gradient}} over {list(self.fields())}, "
                f"got {type(upstream).__name__}"
            )
        unknown = sorted(set(upstream) - set(self.fields()), key=str)
        if unknown:
            raise InputError(
                f"{self.kind}: upstream field(s) {unknown} are not fields of this kind {list(self.fields())}"
            )
        dtype = np.dtype(np.float64)
        state0 = self._initial_state(initial_state, batch, dtype)
        params = self.params(weights, features, dtype)
        mask = self._mask(mask, batch, time)
        self._check_mask(mask)
        xs = x.astype(self.policy.compute, copy=False).astype(dtype, copy=False)
        return self._grad(params, xs, state0, mask, upstream)

    def _upstream(self, upstream, fields):
        """``upstream`` checked against the forward's ``fields`` (shape and
        a floating dtype), as float64."""
        out = {}
        for name, value in upstream.items():
            arr = np.asarray(value)
            if arr.dtype.kind != "f":
                raise InputError(f"{self.kind}: upstream[{name!r}] must be a floating array, got dtype {arr.dtype}")
            if arr.shape != fields[name].shape:
                raise InputError(
                    f"{self.kind}: upstream[{name!r}] has shape {arr.shape}, expected {fields[name].shape} "
                    f"(the shape of the trace's {name!r})"
                )
            out[name] = arr.astype(np.float64)
        return out

    def _grad(self, params, xs, state0, mask, upstream):
        """The validated grad: one cell over the sequence, through
        ``grad_cell``/``grad_weights`` (kinds with layers and directions
        override)."""
        cell = self.grad_cell(params)
        seq, seq_mask = (xs[:, ::-1], None if mask is None else mask[:, ::-1]) if self.go_backwards else (xs, mask)
        tape, fields = G.forward(cell, seq, state0, seq_mask, self.zero_output_for_mask)
        fields = {name: fields[name] for name in self.fields()}
        up = self._upstream(upstream, fields)
        fields, up = self._grad_output_rule(fields, up, mask)
        dx, (dh0, dc0), cell_grads, steps = G.backward(
            cell, tape, up.get("h"), up.get("c"), up.get("final_h"), up.get("final_c")
        )
        if self.go_backwards:
            dx = dx[:, ::-1]
        return G.GradResult(dx, {"h0": dh0, "c0": dc0}, self.grad_weights(cell_grads), steps, Trace(fields))

    def _grad_output_rule(self, fields, up, mask):
        """A kind whose ``run`` changes the trace after the steps changes
        ``fields`` and the upstream ``up`` to match; ``mask`` in input order."""
        return fields, up

    def _teacher(self, teacher, mask, shape, dtype):
        if type(self)._run is not Reference._run:
            raise ConfigError(
                f"{self.kind}: teacher forcing needs one cell over the sequence; this kind runs layers and directions"
            )
        if mask is not None and not mask.all():
            raise InputError(f"{self.kind}: teacher forcing needs every step valid; the mask holds some states")
        if not isinstance(teacher, dict) or set(teacher) != set(self.STATE):
            raise InputError(
                f"{self.kind}: teacher must give every carried state {list(self.STATE)} per step, "
                f"got {sorted(teacher) if isinstance(teacher, dict) else type(teacher).__name__}"
            )
        states = []
        for name in self.STATE:
            arr = self._real_array(f"teacher[{name!r}]", teacher[name], InputError)
            want = (shape[0], shape[1], self.state_width(name))
            if arr.shape != want:
                raise InputError(
                    f"{self.kind}: teacher[{name!r}] has shape {arr.shape}, expected (batch, time, width) = {want}"
                )
            states.append(arr.astype(self.policy.compute, copy=False).astype(dtype, copy=False))
        return TeacherForced(self, states)

    def _run(self, params, xs, state0, mask):
        """The validated run: one cell over the sequence (kinds with layers
        and directions override)."""
        return run_sequence(self, params, xs, state0, mask)

    def _initial_state(self, given, batch, dtype):
        names = [f"{s}0" for s in self.STATE]
        unknown = sorted(set(given) - set(names))
        if unknown:
            raise InputError(f"{self.kind}: unknown argument(s) {unknown}; the initial state is given as {names}")
        given = {k: v for k, v in given.items() if v is not None}
        if given and len(given) != len(names):
            missing = [n for n in names if n not in given]
            raise InputError(
                f"{self.kind}: give all of {names} or none (TF takes the initial state whole); missing {missing}"
            )
        return tuple(self._state(f"{s}0", given.get(f"{s}0"), batch, dtype) for s in self.STATE)

    def __repr__(self):
        return f"lstm_ref.from_config({self.kind!r}, {self.config!r})"


class TeacherForced:
    """A cell whose step ``t`` starts from the teacher's state after step
    ``t - 1`` (``Reference.run(teacher=...)``); everything else is the
    cell's own."""

    def __init__(self, cell, states):
        self._cell, self._states, self._step = cell, states, 0

    def __getattr__(self, name):
        return getattr(self._cell, name)

    def recurrence(self, params, xz_t, state):
        if self._step:
            state = tuple(s[:, self._step - 1] for s in self._states)
        self._step += 1
        return self._cell.recurrence(params, xz_t, state)
