"""The faults a port of any LSTM is known to make, as :class:`~lstm_ref.variants.Variant`\\ s.

A family declares the wrong ports particular to it beside its reference
(``KERAS_LSTM_VARIANTS``, ...); this module adds the ones every kind can
suffer, built from what the family declares about itself (its gate letters
``GATES``, where each weight holds its gate blocks ``gate_blocks``, its
states ``STATE``):

* the gate blocks read in any of the 23 other orders (TF1 i,j,f,o vs Keras
  i,f,c,o vs PyTorch i,f,g,o vs ONNX i,o,f,c);
* a weight reshaped where it should have been transposed;
* the bias missing or counted twice;
* the output sequence reversed (``go_backwards`` vs ``reverse``);
* the final h and c swapped (TF1's ``LSTMStateTuple`` is ``(c, h)``), or the
  initial ones;
* a mask read as lengths (right padding);
* float16 computed in float32 and rounded at the end.

Each carries ``fix``: what the port must change.
"""

from itertools import permutations

import numpy as np

from .variants import Variant, has_partial_mask, set_config


def _permute(weights, case, perm):
    ref = case.reference()
    out = {}
    for name, w in weights.items():
        w = np.asarray(w)
        where = ref.gate_blocks(name, w.shape)
        if where is not None:
            axis, groups = where
            blocks = np.split(w, 4 * groups, axis=axis)
            w = np.concatenate([blocks[4 * g + p] for g in range(groups) for p in perm], axis=axis)
        out[name] = w
    return out


def gate_orders(reference):
    """One fault per other order of the gate blocks, named in the family's
    letters: "gate blocks read as i,c,f,o" means the port's block k is the
    truth's block ``perm[k]``."""
    letters = reference.GATES
    faults = []
    for perm in permutations(range(4)):
        if perm == (0, 1, 2, 3):
            continue
        inverse = tuple(int(i) for i in np.argsort(perm))
        order = ",".join(letters[p] for p in perm)
        faults.append(
            Variant(
                f"gate blocks read as {order} (truth {','.join(letters)})",
                weights=lambda w, case, perm=perm: _permute(w, case, perm),
                fix=f"reorder the gate blocks of every weight and bias as {list(inverse)} "
                f"(the port's blocks {','.join(letters[p] for p in perm)} -> {','.join(letters)})",
            )
        )
    return faults


def _reshaped(weights, case):
    """Every gate matrix (per direction, for stacked ones) filled from its
    transpose's memory order: what ``reshape`` does to another framework's
    (4H, in) weight where ``.T`` was meant."""
    ref = case.reference()
    out = dict(weights)
    for name, w in weights.items():
        w = np.asarray(w)
        if w.ndim >= 2 and ref.gate_blocks(name, w.shape) is not None and w.shape[-1] != w.shape[-2]:
            out[name] = np.ascontiguousarray(np.swapaxes(w, -1, -2)).reshape(w.shape)
    return out


def _non_square_gate_matrix(case):
    ref = case.reference()
    return any(
        np.ndim(w) >= 2 and ref.gate_blocks(k, np.shape(w)) is not None and np.shape(w)[-1] != np.shape(w)[-2]
        for k, w in case.weights.items()
    )


def _scale_biases(factor):
    def change(weights, case):
        ref = case.reference()
        return {
            k: (np.asarray(v) * factor).astype(np.asarray(v).dtype)
            if np.ndim(v) and ref.gate_blocks(k, np.shape(v)) is not None and _is_bias(k, np.shape(v))
            else v
            for k, v in weights.items()
        }

    return change


def _is_bias(name, shape):
    return "bias" in name.lower() or name == "B"


def _has_bias(case):
    ref = case.reference()
    return any(
        _is_bias(k, np.shape(v)) and ref.gate_blocks(k, np.shape(v)) is not None for k, v in case.weights.items()
    )


def _swap_final(trace, case):
    return trace.replace(final_h=trace.final_c, final_c=trace.final_h)


def _swap_initial(case):
    return case.replace(h0=case.initial_state["c0"], c0=case.initial_state["h0"])


def _same_width(case):
    ref = case.reference()
    return ref.state_width("h") == ref.state_width("c")


def _as_lengths(case):
    mask = np.asarray(case.mask, bool)
    lengths = mask.sum(axis=1)
    return case.replace(mask=np.arange(mask.shape[1])[None, :] < lengths[:, None])


def _right_padded(mask):
    mask = np.asarray(mask, bool)
    return bool((mask[:, 1:] <= mask[:, :-1]).all())


def _flip(trace, case):
    ref = case.reference()
    return trace.replace(**{k: np.asarray(trace[k])[:, ::-1] for k in (ref.OUTPUT, *ref.TRACED_STATES)})


def _rounded_at_end(trace, case):
    return trace.replace(**{k: np.asarray(v).astype(np.float16) for k, v in trace.fields.items()})


def _half(case):
    return str(case.config.get("dtype")) in ("float16", "mixed_float16")


def common(reference):
    """The faults every kind can suffer, in ``reference``'s layout."""
    return tuple(gate_orders(reference)) + (
        Variant(
            "a kernel reshaped instead of transposed",
            applies=_non_square_gate_matrix,
            weights=_reshaped,
            fix="transpose the weight matrices (a reshape keeps the other framework's memory order)",
        ),
        Variant("bias missing", applies=_has_bias, weights=_scale_biases(0.0), fix="load the bias"),
        Variant(
            "bias counted twice",
            applies=_has_bias,
            weights=_scale_biases(2.0),
            fix="add the bias once (sum two biases into one, or split one as (bias, 0))",
        ),
        Variant(
            "output sequence reversed",
            trace=_flip,
            fix="flip the output sequence in time (go_backwards returns processing order, ONNX reverse input order)",
        ),
        Variant(
            "final h and c swapped",
            applies=_same_width,
            trace=_swap_final,
            fix="return (h, c); TF1's LSTMStateTuple is (c, h)",
        ),
        Variant(
            "initial h and c swapped",
            applies=lambda case: bool(case.initial_state) and _same_width(case),
            inputs=_swap_initial,
            fix="pass the initial state as (h0, c0); TF1's LSTMStateTuple is (c, h)",
        ),
        Variant(
            "mask read as lengths (right padding)",
            applies=lambda case: has_partial_mask(case) and not _right_padded(case.mask),
            inputs=_as_lengths,
            fix="follow the mask step by step; a length per row expresses right padding only",
        ),
        Variant(
            "float16 computed in float32, rounded at the end",
            applies=_half,
            config=set_config(dtype="float32"),
            trace=_rounded_at_end,
            fix="round every op to float16 as the framework does",
        ),
    )
