"""``Reference.grad`` of ``flax.nnx.LSTMCell`` and ``OptimizedLSTMCell`` under
``nnx.RNN``: float64 central differences of the reference's own forward (no
framework), jax's derivatives of ``flax.nnx``'s activations at their kinks,
and ``nnx.grad`` on the real ``nnx.RNN`` (one Flax worker, a few requests;
the record-driven draws are ``parity_tests/test_grad_live.py``'s).

nnx.RNN's sequence rules are not the runner's masks (``lstm_ref/flax_lstm.py``):
the scan steps through the padding, the final carry is the one after step
``L - 1`` (the last step's for ``L = 0``), ``reverse`` flips each row within
its length.  The backward is the shared cell's over every step, with the
final-carry upstream entering at step ``L - 1`` and the flips transposed.
"""

import numpy as np
import pytest

from lstm_ref import flax_lstm, from_config
from lstm_ref import grad as grad_module
from lstm_ref.activations import derivative
from lstm_ref.case import Case, build_weights
from lstm_ref.errors import InputError
from lstm_ref.harness import grad_oracle
from lstm_ref.harness.compare import compare_grads
from lstm_ref.harness.records import record_of

from .pytest_helpers import central_difference_errors

pytestmark = pytest.mark.kinds("flax_lstmcell", "flax_optimized")

CELL, OPTIMIZED = flax_lstm.LSTM_CELL, flax_lstm.OPTIMIZED
F64 = {"param_dtype": "float64"}

# (kind, config, lengths, initial carry); batch 3, 4 steps, 3 features.
CASES = {
    "cell": (CELL, {"hidden_features": 3}, None, True),
    "cell-lengths-empty-row": (CELL, {"hidden_features": 3}, [4, 2, 0], True),
    "cell-reverse-lengths": (CELL, {"hidden_features": 3, "reverse": True}, [4, 1, 3], False),
    "cell-reverse-keep_order-empty-row": (
        CELL,
        {"hidden_features": 2, "reverse": True, "keep_order": True},
        [4, 0, 2],
        True,
    ),
    "optimized-reverse": (OPTIMIZED, {"hidden_features": 3, "reverse": True}, None, True),
    "optimized-keep_order-lengths": (OPTIMIZED, {"hidden_features": 2, "keep_order": True}, [1, 4, 3], False),
    "cell-hard_sigmoid-gelu-empty-row": (
        CELL,
        {"hidden_features": 2, "gate_fn": "hard_sigmoid", "activation_fn": "gelu"},
        [4, 3, 0],
        True,
    ),
    "cell-soft_sign-elu": (CELL, {"hidden_features": 2, "gate_fn": "soft_sign", "activation_fn": "elu"}, None, True),
    "optimized-hard_tanh-silu-reverse": (
        OPTIMIZED,
        {"hidden_features": 2, "gate_fn": "hard_tanh", "activation_fn": "silu", "reverse": True},
        [2, 4, 0],
        True,
    ),
    "cell-tanh-log_sigmoid": (
        CELL,
        {"hidden_features": 2, "gate_fn": "tanh", "activation_fn": "log_sigmoid"},
        None,
        False,
    ),
}


def _setup(kind, config, lengths, states, seed=0):
    ref = from_config(kind, {**config, **F64})
    rng = np.random.default_rng(seed)
    weights = build_weights(ref, rng, 3)
    x = rng.standard_normal((3, 4, 3))
    mask = None if lengths is None else np.arange(4)[None, :] < np.asarray(lengths)[:, None]
    init = {f"{s}0": 0.5 * rng.standard_normal((3, ref.units)) for s in ref.STATE} if states else {}
    trace = ref.run(x, weights, mask=mask, **init)
    up = {f: rng.standard_normal(np.shape(trace[f])) for f in ref.fields()}
    return ref, x, weights, mask, init, up


def fd_errors(kind, config, lengths, states, mutate=None, eps=1e-6):
    """``{array: max |grad - central difference| / max(1, max |central
    difference|)}``; ``mutate(g, mask)`` changes the gradient first (a
    mutant)."""
    ref, x, weights, mask, init, up = _setup(kind, config, lengths, states)
    g = ref.grad(x, weights, up, mask=mask, **init)
    if mutate is not None:
        mutate(g, mask)
    wrt = {"x": (x, g.x), **{k: (v, g.initial[k]) for k, v in init.items()}}
    wrt.update((f"w:{k}", (np.asarray(v, np.float64), g.weights[k])) for k, v in weights.items())

    def loss(name, value):
        args = {"x": x, "weights": weights, "init": init}
        if name == "x":
            args["x"] = value
        elif name.startswith("w:"):
            args["weights"] = {**weights, name[2:]: value}
        else:
            args["init"] = {**init, name: value}
        trace = ref.run(args["x"], args["weights"], mask=mask, **args["init"])
        return sum(float(np.sum(trace[f] * u)) for f, u in up.items())

    return central_difference_errors(wrt, loss, eps)


# Measured worst over CASES: 1.9e-9 (cell-tanh-log_sigmoid; the others
# 6e-10..1.1e-9: central differences at eps=1e-6 carry ~1e-10..1e-9 of
# truncation and cancellation error), 50x below; every mutant below is >= 1e-2
# (dL/dx left in processing order: 0.61).
FD_TOL = 1e-7


@pytest.mark.parametrize("name", list(CASES))
def test_grad_is_the_derivative_of_the_forward(name):
    errors = fd_errors(*CASES[name])
    assert max(errors.values()) < FD_TOL, errors


def _runner_masks(monkeypatch, mask_of):
    """The mutant: the shared forward run with the runner's mask (the state
    held past a row's length, no gradient into the padding's steps), as
    Keras and PyTorch mask -- not what nnx.RNN does."""

    class Masked:
        def __getattr__(self, name):
            return getattr(grad_module, name)

        @staticmethod
        def forward(cell, x, state0, mask, zero_output_for_mask):
            return grad_module.forward(cell, x, state0, mask_of(), zero_output_for_mask)

    monkeypatch.setattr(flax_lstm, "G", Masked())


def test_the_check_catches_the_runners_masks(monkeypatch):
    kind, config, lengths, states = CASES["cell-lengths-empty-row"]
    _runner_masks(monkeypatch, lambda: np.arange(4)[None, :] < np.asarray(lengths)[:, None])
    assert max(fd_errors(kind, config, lengths, states).values()) > 1e-2


def test_the_check_catches_dx_left_in_processing_order():
    """``reverse=True``: dL/dx not flipped back within the lengths."""

    def unflipped(g, mask):
        g.x = flax_lstm.flip_sequences(g.x, mask.sum(axis=1))

    assert fd_errors(*CASES["cell-reverse-lengths"], mutate=unflipped)["x"] > 1e-2


def test_the_check_catches_gate_layers_swapped():
    """The weight gradients of ``if_`` and ``ig`` exchanged (TF1's i, j, f, o read as i, f, g, o)."""

    def swapped(g, mask):
        w = g.weights
        w["if_/kernel"], w["ig/kernel"] = w["ig/kernel"], w["if_/kernel"]

    errors = fd_errors(*CASES["cell"], mutate=swapped)
    assert errors["w:if_/kernel"] > 1e-2 and errors["w:ig/kernel"] > 1e-2


def test_the_final_carry_upstream_enters_at_step_length_minus_1():
    """Processing step ``L - 1`` (the last for ``L = 0``): there dL/dh and
    the carried dL/dc hold the final upstream; the steps after it take
    none of it (only ``h``'s own upstream)."""
    ref, x, weights, mask, init, up = _setup(CELL, {"hidden_features": 3}, [4, 2, 0], True)
    only_final = {"final_h": up["final_h"], "final_c": up["final_c"]}
    g = ref.grad(x, weights, only_final, mask=mask, **init)
    for row, last in enumerate([3, 1, 3]):
        np.testing.assert_array_equal(g.steps["h"][row, last], up["final_h"][row])
        np.testing.assert_array_equal(g.steps["c_carried"][row, last], up["final_c"][row])
        assert not g.steps["h"][row, last + 1 :].any() and not g.steps["c_carried"][row, last + 1 :].any()


def test_an_upstream_on_a_per_step_c_is_refused():
    """nnx.RNN returns no per-step c: an upstream on ``c`` is an InputError naming it."""
    ref, x, weights, mask, init, up = _setup(CELL, {"hidden_features": 3}, [4, 2, 0], True)
    with pytest.raises(InputError, match=r"upstream field\(s\) \['c'\] are not fields"):
        ref.grad(x, weights, {**up, "c": np.zeros((3, 4, 3))}, mask=mask, **init)


# -- flax.nnx's activations: their derivatives ----------------------------------------------------

KINKS = {"relu": (0,), "relu6": (0, 6), "hard_sigmoid": (-3, 3), "hard_silu": (-3, 3), "hard_tanh": (-1, 1)}
KINKS.update(dict.fromkeys(("leaky_relu", "elu", "celu", "selu", "soft_sign"), (0,)))  # soft_sign: |x|


def _derivative_of(fn):
    return getattr(fn, "derivative", None) or derivative(fn)


@pytest.mark.parametrize("name", sorted(flax_lstm.ACTIVATIONS))
def test_each_activations_derivative_is_its_slope(name):
    """Away from the kinks, central differences of the float64 function;
    measured worst 9.5e-10 (silu; gelu 8.5e-10), 100x below; a wrong slope
    (Keras 2's hard_sigmoid 0.2 for 1/6, leaky_relu's 0.2 for 0.01) is >= 1e-2."""
    fn = flax_lstm.ACTIVATIONS[name]
    x = np.linspace(-7.0, 7.0, 4001)
    for kink in KINKS.get(name, ()):
        x = x[np.abs(x - kink) > 1e-3]
    h = 1e-6
    fd = (fn(x + h) - fn(x - h)) / (2 * h)
    np.testing.assert_allclose(_derivative_of(fn)(x), fd, rtol=0, atol=1e-7)


# At the kinks, jax's choice (jax/_src/nn/functions.py, jax 0.10.2, the module
# docstring of lstm_ref/flax_lstm.py): jax.grad(flax.nnx.<name>) at these
# points, float32 and float64 alike, gives exactly these.
AT_KINKS = {
    ("relu", 0.0): 0.0,
    ("relu6", 0.0): 0.0,
    ("relu6", 6.0): 0.0,
    ("hard_sigmoid", -3.0): 0.0,
    ("hard_sigmoid", 3.0): 0.0,
    ("hard_silu", -3.0): 0.0,
    ("hard_silu", 3.0): 1.0,
    ("hard_tanh", -1.0): 1.0,
    ("hard_tanh", 1.0): 1.0,
    ("leaky_relu", 0.0): 1.0,
    ("elu", 0.0): 1.0,
    ("celu", 0.0): 1.0,
    ("selu", 0.0): 1.0507009873554804934193349852946 * 1.6732632423543772848170429916717,
}


@pytest.mark.parametrize(("name", "x"), list(AT_KINKS), ids=[f"{n}@{x:g}" for n, x in AT_KINKS])
def test_the_derivative_at_a_kink_is_jaxs(name, x):
    value = _derivative_of(flax_lstm.ACTIVATIONS[name])(np.array([x]))
    assert float(value[0]) == pytest.approx(AT_KINKS[name, x], rel=1e-15)


# -- live: nnx.grad through the real nnx.RNN -------------------------------------------------------

# (kind, config, lengths, initial carry): reverse and keep_order within lengths
# with a row of length 0, in float32, and in float64 with time_major and
# unroll; OptimizedLSTMCell with other functions.  Each its own compile
# (about 1.5 s a request).
LIVE = [
    (CELL, {"hidden_features": 3, "reverse": True, "keep_order": True}, [5, 2, 0], True),
    (
        CELL,
        {"hidden_features": 3, "reverse": True, "keep_order": True, "time_major": True, "unroll": 2, **F64},
        [5, 2, 0],
        True,
    ),
    (OPTIMIZED, {"hidden_features": 4, "gate_fn": "hard_sigmoid", "activation_fn": "gelu"}, None, False),
]


def live_case(kind, config, lengths, states, seed=0, weights_for=build_weights):
    ref = from_config(kind, config)
    dtype = ref.policy.variable
    rng = np.random.default_rng(seed)
    weights = {k: np.asarray(v).astype(dtype) for k, v in weights_for(ref, rng, 3).items()}
    x = rng.standard_normal((3, 5, 3)).astype(dtype)
    mask = None if lengths is None else np.arange(5)[None, :] < np.asarray(lengths)[:, None]
    init = {f"{s}0": (0.5 * rng.standard_normal((3, ref.units))).astype(dtype) for s in ref.STATE} if states else {}
    case = Case(kind, config, x, weights, mask, **init)
    return case, grad_oracle.draw_upstream(case, rng)


def _at_the_kinks(ref, rng, features):
    """Zero kernels and h-side biases exactly at jax's kinks: i and o at
    hard_sigmoid's 3 (slope 0 there: relu6's open interval), f at -3, g at
    hard_tanh's 1 (slope 1: the closed interval); then c = 1 and h = 1
    after every step, hard_tanh(c) on its kink too."""
    units = ref.units
    bias = np.repeat([3.0, -3.0, 1.0, 3.0], units)
    return ref.unpack(np.zeros((features, 4 * units)), np.zeros((units, 4 * units)), bias)


KINK_CONFIG = {"hidden_features": 3, "gate_fn": "hard_sigmoid", "activation_fn": "hard_tanh"}


def _verdicts(oracle_for, case, upstream):
    """The framework's gradient (with its per-step states) and every
    array's verdict under the record's bound for the case's dtype."""
    theirs, _ = grad_oracle.framework_grads(oracle_for, case, upstream)
    assert {"steps:h", "steps:c_carried"} <= set(theirs), sorted(theirs)
    tol = record_of(case.kind).grad_tolerance(case.reference().policy.name)
    ours = grad_oracle.reference_grads(case, upstream)
    return theirs, ours, grad_oracle.verdicts(case, upstream, ours, theirs, tol)


def _failures(verdicts):
    return {k: f"t {v.t:.3g} > {v.allowed:.3g} at {v.worst}" for k, v in verdicts.items() if not v.passed}


def test_grad_matches_nnx_grad_on_the_real_rnn(oracle_for, monkeypatch):
    """Every input, initial carry, weight (at its nnx.state path) and the
    per-step dL/dh_t, dL/dc_t (c with h held) against ``nnx.grad``, one
    request per case; and the same comparison fails for wrong semantics:
    the runner's masks in place of nnx.RNN's rules, and the full dL/dc_t
    in place of the carried one."""
    for spec in LIVE:
        case, upstream = live_case(*spec)
        theirs, ours, verdicts = _verdicts(oracle_for, case, upstream)
        assert not _failures(verdicts), f"{case.describe()} {case.config}: {_failures(verdicts)}"
        if case.mask is not None:
            with monkeypatch.context() as m:  # the runner's masks (processing order: right-padded stays so)
                _runner_masks(m, lambda case=case: case.mask)
                wrong = grad_oracle.reference_grads(case, upstream)
            mutant = compare_grads({"x": wrong["x"]}, {"x": theirs["x"]}, 1.0)["x"]
            assert mutant.ratio > 1e-2, mutant
        full_c = compare_grads({"c": ours["steps:c"]}, {"c": theirs["steps:c_carried"]}, 1.0)["c"]
        assert full_c.ratio > 1e-2, full_c


def test_the_subgradient_at_the_kinks_is_jaxs(oracle_for, monkeypatch):
    """Every pre-activation and c exactly on a kink at every step (float32;
    exact in float64 too): jax's slopes there (0 at hard_sigmoid's +-3, 1 at
    hard_tanh's +-1) give the candidate's and the cell's paths a gradient
    and the gates none; the closed interval for hard_sigmoid (a plausible
    subgradient, TF's clip) is caught.  Judged by the plain bound alone: one
    rounding of the inputs would move them off the kinks (the rounding
    spread is 0.88 here), but none happens (measured t 1.2e-7)."""
    case, upstream = live_case(CELL, KINK_CONFIG, [5, 2, 0], True, weights_for=_at_the_kinks)
    trace = case.run()
    assert np.array_equal(trace.final_c, np.ones_like(trace.final_c))
    theirs, _ = grad_oracle.framework_grads(oracle_for, case, upstream)
    ours = grad_oracle.paired(grad_oracle.reference_grads(case, upstream), theirs)
    stats = compare_grads(ours, theirs, record_of(CELL).grad_tolerance("float32"))
    assert all(s.ratio <= 1 for s in stats.values()), {k: s for k, s in stats.items() if s.ratio > 1}
    assert np.abs(ours["w:ig/kernel"]).max() > 0.1 and not theirs["w:ii/kernel"].any()
    monkeypatch.setattr(flax_lstm.ACTIVATIONS["hard_sigmoid"], "derivative", lambda x: ((x >= -3) & (x <= 3)) / 6.0)
    wrong = grad_oracle.reference_grads(case, upstream)
    assert np.abs(wrong["w:ii/kernel"] - theirs["w:ii/kernel"]).max() > 1e-2
