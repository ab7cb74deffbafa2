"""Gradient goldens: the framework's gradient of a seeded case, stored.

A gradient golden is a run golden's case (its ``@golden`` function, linked
here by the callable) or a case of its own, with a seeded N(0, 1) upstream
on the fields the framework's ``grad`` op takes
(:func:`~lstm_ref.harness.grad_oracle.upstream_fields`), and the
framework's gradient of ``sum(field * upstream)``: every input, initial
state, weight and the per-step states its worker returns, computed by
``tf.GradientTape`` / ``torch.autograd`` on the real layer, ``onnx.LSTM``
through the torch oracle and the converter (``grad_oracle``; its provenance
says so).  Files: ``fixtures/<record id>/grad/<case id>.npz`` (``store``);
ids ``<kind>_grad_<what>``.  ``parity_tests/test_grad_golden.py`` replays
them with no framework, under the record's gradient bound for the dtype.
"""

from dataclasses import dataclass

import numpy as np

from ...case import Case
from ...errors import FixtureError
from .. import grad_oracle
from ..kinds import flax_nnx, keras3, layer_norm, onnx_lstm, tf1, tf_keras, torch_cell, torch_nn
from . import store
from .case import CASES as RUN  # the run goldens, {id: fn}; some are registered by a loop (no name to import)

GRAD_CASES: dict = {}


@dataclass
class GradCase:
    case: Case
    upstream: dict  # {field: dL/d field}
    notes: str = ""


def grad_golden(name, base, seed, notes="", change=None):
    """Register the gradient golden ``name`` (it must read ``<kind>_grad_...``):
    the case ``base()`` builds (a run golden's function, or any ``() -> Case``),
    changed by ``change(case) -> case`` if given, with an upstream drawn
    from ``default_rng(seed)``."""
    if "_grad_" not in name:
        raise ValueError(f"gradient golden ids read <kind>_grad_<what>; got {name!r}")
    if name in GRAD_CASES:
        raise ValueError(f"duplicate gradient golden id {name!r}")

    def build():
        case = base()
        if change is not None:
            case = change(case)
        case.name = name
        return GradCase(case, grad_oracle.draw_upstream(case, np.random.default_rng(seed)), notes)

    build.base = base
    GRAD_CASES[name] = build
    return build


@dataclass
class GradGolden:
    case_id: str
    meta: dict
    case: Case
    upstream: dict
    expected: dict  # the framework's gradients, keyed as grad_oracle.reference_grads


def encode(meta, grad_case: GradCase, expected: dict) -> bytes:
    inputs = {**grad_case.case.arrays(), **{f"up:{k}": v for k, v in grad_case.upstream.items()}}
    return store.encode(meta, inputs, expected)


def generate(case_id, build, pool, directory, folder_of):
    """Write ``case_id``'s file under ``directory/<folder_of(kind)>/grad``
    from the framework."""
    grad_case = build()
    case = grad_case.case
    expected, provenance = grad_oracle.framework_grads(pool.for_kind, case, grad_case.upstream)
    meta = {
        "format_version": store.FORMAT_VERSION,
        "case_id": case_id,
        "kind": case.kind,
        "config": case.config,
        "notes": " ".join(filter(None, (grad_case.notes, case.notes))),
        "meta": case.meta,
        "provenance": provenance,
        "grad": {
            "upstream": sorted(grad_case.upstream),
            "from": getattr(build.base, "case_id", build.base.__name__),
        },
    }
    path = directory / folder_of(case.kind) / store.GRAD / f"{case_id}.npz"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(encode(meta, grad_case, expected))


def load(case_id, directory=store.FIXTURES, manifest=None) -> GradGolden:
    """One gradient golden, verified (checksum, format version)."""

    meta, entries = store.read_verified(case_id, directory, manifest)
    if "grad" not in meta:
        raise FixtureError(f"{case_id}: not a gradient golden (no 'grad' in its meta)")
    expected = {k[4:]: entries.pop(k) for k in list(entries) if k.startswith("out:")}
    upstream = {k[3:]: entries.pop(k) for k in list(entries) if k.startswith("up:")}
    return GradGolden(case_id, meta, store.case_of(case_id, meta, entries), upstream, expected)


def diff_rows(old_dir, new_dir) -> list:
    """Rows (case id, status, max |new - old|) of the gradient goldens, as
    ``generate.diff_table``'s for the run goldens."""
    try:
        old_ids = set(store.grad_case_ids(old_dir))
    except Exception:  # noqa: BLE001 - no or broken old manifest: everything is new
        old_ids = set()
    new_ids = set(store.grad_case_ids(new_dir))
    rows = []
    for case_id in sorted(old_ids | new_ids):
        if case_id not in new_ids or case_id not in old_ids:
            rows.append((case_id, "removed" if case_id not in new_ids else "added", ""))
            continue
        new = load(case_id, new_dir)
        try:
            old = load(case_id, old_dir)
        except Exception as exc:  # noqa: BLE001
            rows.append((case_id, f"old unreadable: {exc}", ""))
            continue
        old_out, new_out = old.expected, new.expected
        if old_out.keys() != new_out.keys():
            rows.append((case_id, "fields changed", ""))
            continue
        same_inputs = old.case.config == new.case.config and all(
            _same(a, b) for a, b in ((old.case.arrays(), new.case.arrays()), (old.upstream, new.upstream))
        )
        worst = max(
            float(np.max(np.abs(old_out[k].astype(np.float64) - new_out[k].astype(np.float64))))
            if old_out[k].shape == new_out[k].shape
            else float("inf")
            for k in new_out
        )
        identical = all(np.array_equal(old_out[k], new_out[k]) for k in new_out)
        status = "inputs changed" if not same_inputs else ("identical" if identical else "outputs changed")
        rows.append((case_id, status, f"{worst:.3g}"))
    return rows


def _same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(
        np.asarray(a[k]).dtype == np.asarray(b[k]).dtype and np.array_equal(a[k], b[k]) for k in a
    )


# -- the cases: per kind, from its run goldens ---------------------------------------------------


def _without(*names):
    """A change dropping weights ``names`` (ONNX's P: torch, the oracle, has none)."""

    def change(case):
        return case.replace(weights={k: v for k, v in case.weights.items() if k not in names})

    return change


for _name, _base, _seed, _notes, *_change in (
    ("keras_grad_initial_state", keras3.keras_initial_state, 1, "h0/c0 receive the gradient."),
    ("keras_grad_mask_go_backwards", keras3.keras_mask_go_backwards, 2, "Masked steps skipped, flipped back."),
    ("keras_grad_zero_output_for_mask", keras3.keras_zero_output_for_mask, 3, "A zeroed output takes none."),
    ("keras_grad_relu_hard_sigmoid", RUN["keras_activation_relu_hard_sigmoid"], 4, "Keras 3 slopes, flat regions."),
    ("keras_grad_float64_masked", RUN["keras_dtype_float64_masked"], 5, "float64: exact."),
    ("keras_grad_mixed_float16", RUN["keras_dtype_mixed_float16"], 6, "mixed_float16: float32 weight grads."),
    ("tf_keras_grad_mask_go_backwards", tf_keras.tf_keras_mask_go_backwards, 11, ""),
    ("tf_keras_grad_unroll_go_backwards_zero_output", tf_keras.tf_keras_unroll_go_backwards_zero_output, 12, ""),
    ("tf_keras_grad_hard_sigmoid", tf_keras.tf_keras_hard_sigmoid, 13, "Keras 2's slope 0.2 and flat regions."),
    ("tf_keras_grad_implementation_0", tf_keras.tf_keras_implementation_0, 14, ""),
    ("tf_keras_grad_float16_masked", RUN["tf_keras_dtype_float16_masked"], 15, "float16 throughout."),
    ("tf1_basic_grad_initial_state_mask", tf1.tf1_basic_initial_state_mask, 21, "sequence_length, h0/c0."),
    ("tf1_basic_grad_hard_sigmoid", tf1.tf1_basic_activation_hard_sigmoid, 22, ""),
    ("tf1_basic_grad_float64", tf1.tf1_basic_float64, 23, ""),
    ("tf1_lstmcell_grad_all_options", tf1.tf1_lstmcell_all_options, 31, "Peepholes, both clips, projection."),
    ("tf1_lstmcell_grad_cell_clip_zero", tf1.tf1_lstmcell_cell_clip_zero, 32, "c on the clip bound."),
    ("tf1_lstmcell_grad_proj_clip", tf1.tf1_lstmcell_proj_clip, 33, ""),
    ("tf1_lstmcell_grad_float16_all_options", tf1.tf1_lstmcell_float16_all_options, 34, ""),
    ("ln_contrib_grad_per_gate", layer_norm.ln_contrib_per_gate, 41, "Per-gate norms, variance path."),
    ("ln_contrib_grad_mask_right_padded", layer_norm.ln_contrib_mask_right_padded, 42, ""),
    ("ln_contrib_grad_small_variance", layer_norm.ln_contrib_small_variance, 43, "float64, var ~1e-8: eps 1e-12."),
    ("ln_contrib_grad_no_layer_norm", layer_norm.ln_contrib_seed_no_layer_norm, 44, ""),
    ("ln_contrib_grad_float16", layer_norm.ln_contrib_float16, 45, "float16: epsilon 1e-3."),
    ("ln_tfa_grad_per_gate", layer_norm.ln_tfa_per_gate, 51, "Joint norms, fused path."),
    ("ln_tfa_grad_mask_backwards", layer_norm.ln_tfa_mask_backwards, 52, ""),
    ("ln_tfa_grad_small_epsilon_nonfused", layer_norm.ln_tfa_small_epsilon_nonfused, 53, ""),
    ("ln_tfa_grad_float64", layer_norm.ln_tfa_float64, 54, ""),
    ("ln_tfa_grad_mixed_float16", layer_norm.ln_tfa_mixed_float16, 55, ""),
    ("torch_grad_bidirectional_packed", torch_nn.torch_bidirectional_packed, 61, "Reverse within lengths."),
    ("torch_grad_two_layers_bidirectional_proj", torch_nn.torch_two_layers_bidirectional_proj, 62, ""),
    ("torch_grad_float64_packed", torch_nn.torch_float64_packed, 63, ""),
    ("torch_cell_grad_initial_state", torch_cell.torch_cell_initial_state, 71, "Per-step c upstream too."),
    ("torch_cell_grad_no_bias_float64", torch_cell.torch_cell_no_bias_float64, 72, ""),
    ("onnx_grad_no_bias_no_peepholes", onnx_lstm.onnx_no_bias_no_peepholes, 81, "Through torch (no ORT training)."),
    ("flax_cell_grad_lengths_carry", flax_nnx.flax_cell_lengths_carry, 91, "seq_lengths, an initial carry."),
    ("flax_cell_grad_reverse_keep_order_float64", flax_nnx.flax_cell_reverse_keep_order_float64, 92, ""),
    ("flax_optimized_grad_lengths_reverse", flax_nnx.flax_optimized_lengths_reverse, 93, ""),
    (
        "onnx_grad_bidirectional_states",
        onnx_lstm.onnx_bidirectional_states,
        82,
        "Through torch (no ORT training); P left out: torch has none.",
        _without("P"),
    ),
):
    grad_golden(_name, _base, _seed, _notes, *_change)
