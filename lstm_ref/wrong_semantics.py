"""Plausible wrong semantics, for the report's discrimination column.

Each variant re-runs a case the way a plausible *wrong* port would (another
gate order, Keras 2's hard_sigmoid, a flipped go_backwards output, ...).  If
a variant lands within tolerance of TF, the case cannot tell that bug from
the truth, and the report says so.  Variants are built from the real
reference by permuting weights, swapping a function, or post-processing the
trace; the reference itself carries no switch for them.
"""

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
