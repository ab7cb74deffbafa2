"""Plausible wrong semantics, for the report's discrimination column.

Each variant re-runs a case the way a plausible *wrong* port would (another
gate order, Keras 2's hard_sigmoid, a flipped go_backwards output, ...).  If
a variant lands within tolerance of TF, the case cannot tell that bug from
the truth, and the report says so.  Variants are built from the real
reference by permuting weights, swapping a function, or post-processing the
trace; the reference itself carries no switch for them.
"""

from dataclasses import replace

import numpy as np

from . import activations, from_config
from .trace import Trace

VARIANTS = {}  # kind -> list of (name, applies(case) -> bool, run(case) -> Trace)


def variant(kind, name, applies=lambda case: True):
    def register(fn):
        VARIANTS.setdefault(kind, []).append((name, applies, fn))
        return fn

    return register


def run_case(case, ref=None, weights=None, mask="same", oracle=False):
    ref = ref or from_config(case.kind, case.config)
    return ref.run(case.x, case.weights if weights is None else weights, h0=case.h0, c0=case.c0,
                   mask=case.mask if mask == "same" else mask, oracle=oracle)


def permute_gate_blocks(weights, order, n_gates=4, keys=("kernel", "recurrent_kernel", "bias")):
    """Reorder the gate blocks on the last axis: a port that reads TF's gates in another order."""
    out = dict(weights)
    for key in keys:
        if key in out:
            blocks = np.split(out[key], n_gates, axis=-1)
            out[key] = np.concatenate([blocks[i] for i in order], axis=-1)
    return out


def flip_time(trace):
    return Trace(trace.h[:, ::-1], trace.c[:, ::-1], trace.final_h, trace.final_c)


def keras2_hard_sigmoid(x):
    return np.clip(x * x.dtype.type(0.2) + x.dtype.type(0.5), 0, 1).astype(x.dtype)


K = "keras.layers.LSTM"


def _uses(case, name):
    return name in (case.config.get("activation", "tanh"), case.config.get("recurrent_activation", "sigmoid"))


@variant(K, "gate order i,f,o,c")
def _keras_ifoc(case):
    return run_case(case, weights=permute_gate_blocks(case.weights, (0, 1, 3, 2)))


@variant(K, "gate order i,c,f,o (TF1's i,j,f,o)")
def _keras_icfo(case):
    return run_case(case, weights=permute_gate_blocks(case.weights, (0, 2, 1, 3)))


@variant(K, "forget bias +1 at run time (TF1 habit)", applies=lambda case: "bias" in case.weights)
def _keras_forget_bias(case):
    units = case.weights["bias"].shape[0] // 4
    bias = case.weights["bias"].copy()
    bias[units:2 * units] += 1
    return run_case(case, weights={**case.weights, "bias": bias})


@variant(K, "Keras 2 hard_sigmoid", applies=lambda case: _uses(case, "hard_sigmoid"))
def _keras2_hard_sigmoid(case):
    ref = from_config(case.kind, case.config)
    if case.config.get("recurrent_activation", "sigmoid") == "hard_sigmoid":
        ref.recurrent_activation = keras2_hard_sigmoid
    if case.config.get("activation", "tanh") == "hard_sigmoid":
        ref.activation = keras2_hard_sigmoid
    return run_case(case, ref)


@variant(K, "go_backwards output flipped back", applies=lambda case: case.config.get("go_backwards", False))
def _keras_flip(case):
    return flip_time(run_case(case))


@variant(K, "mask zeroes the output", applies=lambda case: case.mask is not None and not case.mask.all())
def _keras_mask_zero(case):
    ref = from_config(case.kind, case.config)
    ref.zero_output_for_mask = not ref.zero_output_for_mask
    return run_case(case, ref)


@variant(K, "mask ignored", applies=lambda case: case.mask is not None and not case.mask.all())
def _keras_mask_ignored(case):
    return run_case(case, mask=None)


@variant(K, "h0 as the output before the first valid step",
         applies=lambda case: case.mask is not None and case.h0 is not None and not case.mask.all())
def _keras_h0_output(case):
    trace = run_case(case)
    mask = case.mask[:, ::-1] if case.config.get("go_backwards") else case.mask
    before_first = ~np.logical_or.accumulate(mask, axis=1)
    h = np.where(before_first[..., None], case.h0.astype(trace.h.dtype)[:, None, :], trace.h)
    return Trace(h, trace.c, trace.final_h, trace.final_c)


@variant(K, "tanh in place of the configured activation", applies=lambda case: case.config.get("activation", "tanh") != "tanh")
def _keras_default_activation(case):
    ref = from_config(case.kind, case.config)
    ref.activation = activations.tanh
    return run_case(case, ref)


def applicable(case):
    return [(name, fn) for name, applies, fn in VARIANTS.get(case.kind, []) if applies(case)]


# -- TF1 cells ------------------------------------------------------------------

def _with_config(case, **changes):
    config = {**case.config, **changes}
    return run_case(case_like(case, config), from_config(case.kind, config))


def case_like(case, config, **changes):
    return replace(case, config=config, **changes)


for _kind in ("tf.compat.v1.nn.rnn_cell.BasicLSTMCell", "tf.compat.v1.nn.rnn_cell.LSTMCell"):
    variant(_kind, "gate order i,f,j,o")(lambda case: run_case(case, weights=permute_gate_blocks(case.weights, (0, 2, 1, 3))))
    variant(_kind, "forget_bias missing", applies=lambda case: case.config.get("forget_bias", 1.0) != 0)(
        lambda case: _with_config(case, forget_bias=0.0))
    variant(_kind, "forget_bias doubled", applies=lambda case: case.config.get("forget_bias", 1.0) != 0)(
        lambda case: _with_config(case, forget_bias=2 * case.config.get("forget_bias", 1.0)))

_FULL = "tf.compat.v1.nn.rnn_cell.LSTMCell"
variant(_FULL, "c not clipped", applies=lambda case: case.config.get("cell_clip") is not None)(
    lambda case: _with_config(case, cell_clip=None))
variant(_FULL, "proj_clip missing",
        applies=lambda case: case.config.get("proj_clip") is not None and case.config.get("num_proj"))(
    lambda case: _with_config(case, proj_clip=None))
variant(_FULL, "peepholes ignored", applies=lambda case: case.config.get("use_peepholes"))(
    lambda case: run_case(case_like(case, {**case.config, "use_peepholes": False}),
                          weights={k: v for k, v in case.weights.items() if not k.endswith("_diag")}))


# -- layer-norm cells -------------------------------------------------------------

_CONTRIB = "tf.contrib.rnn.LayerNormBasicLSTMCell"
_TFA = "tfa.rnn.LayerNormLSTMCell"


def _patched_norm(case, skip=None, per_gate=False, epsilon=None):
    """The real reference with its norm bent: a scope skipped, a 4u-wide norm
    done per gate block, or another epsilon."""
    ref = from_config(case.kind, case.config)
    real = ref._norm
    if epsilon is not None:
        for attr in ("epsilon", "norm_epsilon"):
            if hasattr(ref, attr):
                setattr(ref, attr, epsilon)

    def norm(params, scope, v):
        if scope == skip:
            return v
        if per_gate and v.shape[-1] == 4 * ref.units:
            parts = []
            for g, block in enumerate(np.split(v, 4, axis=-1)):
                sub = {f"{scope}/gamma": np.split(params[f"{scope}/gamma"], 4)[g],
                       f"{scope}/beta": np.split(params[f"{scope}/beta"], 4)[g]}
                parts.append(real(sub, scope, block))
            return np.concatenate(parts, axis=-1)
        return real(params, scope, v)

    ref._norm = norm
    return run_case(case, ref)


def _contrib_joint(case):
    """All four gates normalised together (with the four gammas side by side)."""
    from .layer_norm_cells import batch_norm_layer_norm

    ref = from_config(case.kind, case.config)
    scopes = ("input", "transform", "forget", "output")
    real = ref._norm

    def recurrence(params, xz_t, state):  # contrib's recurrence with one joint norm
        h_prev, c_prev = state
        z = xz_t + h_prev @ params["kernel"][-ref.units:]
        z = batch_norm_layer_norm(z, np.concatenate([params[f"{s}/gamma"] for s in scopes]),
                                  np.concatenate([params[f"{s}/beta"] for s in scopes]), ref.epsilon)
        i, j, f, o = np.split(z, 4, axis=-1)
        sig = activations.sigmoid
        c = c_prev * sig(f + np.asarray(ref.forget_bias, dtype=f.dtype)) + sig(i) * ref.activation(j)
        c = real(params, "state", c)
        h = ref.activation(c) * sig(o)
        return h, (h, c)

    ref.recurrence = recurrence
    return run_case(case, ref)


_LN = lambda case: case.config.get("layer_norm", True)  # noqa: E731
variant(_CONTRIB, "gate order i,f,j,o", applies=_LN)(
    lambda case: run_case(case, weights=permute_gate_blocks(case.weights, (0, 2, 1, 3), keys=("kernel",))))
variant(_CONTRIB, "forget_bias missing", applies=lambda case: case.config.get("forget_bias", 1.0) != 0)(
    lambda case: _with_config(case, forget_bias=0.0))
variant(_CONTRIB, "joint layer norm instead of per-gate", applies=_LN)(_contrib_joint)
variant(_CONTRIB, "Keras epsilon 1e-3 instead of 1e-12",
        applies=lambda case: _LN(case) and case.config.get("dtype", "float32") != "float16")(
    lambda case: _patched_norm(case, epsilon=1e-3))
variant(_CONTRIB, "no state norm", applies=_LN)(lambda case: _patched_norm(case, skip="state"))

_TFA_4U = ("kernel", "recurrent_kernel", "bias", "kernel_norm/gamma", "kernel_norm/beta",
           "recurrent_norm/gamma", "recurrent_norm/beta")
variant(_TFA, "gate order i,f,o,c")(
    lambda case: run_case(case, weights=permute_gate_blocks(case.weights, (0, 1, 3, 2), keys=_TFA_4U)))
variant(_TFA, "per-gate layer norm instead of joint")(lambda case: _patched_norm(case, per_gate=True))
variant(_TFA, "no state norm")(lambda case: _patched_norm(case, skip="state_norm"))
variant(_TFA, "contrib epsilon 1e-12 instead of norm_epsilon")(lambda case: _patched_norm(case, epsilon=1e-12))
variant(_TFA, "bias added before the norms", applies=lambda case: "bias" in case.weights)(
    lambda case: _tfa_bias_first(case))


def _tfa_bias_first(case):
    weights = dict(case.weights)
    # kernel_norm(x K + b): emulate by appending a constant-one input feature
    # whose kernel row is the bias, and dropping the bias after the norms.
    x1 = np.concatenate([case.x, np.ones(case.x.shape[:2] + (1,), case.x.dtype)], axis=-1)
    weights["kernel"] = np.concatenate([case.weights["kernel"], case.weights["bias"][None]], axis=0)
    weights["bias"] = np.zeros_like(case.weights["bias"])
    return run_case(case_like(case, case.config, x=x1), weights=weights)
