"""``flax.nnx.LSTMCell`` and ``OptimizedLSTMCell`` under ``nnx.RNN``: what the
record-driven tests do not say by themselves.  One worker (the Flax oracle,
``.venv-jax``), a few requests each."""

import numpy as np
import pytest

from lstm_ref import Case, WeightError, from_config
from lstm_ref.case import build_weights
from lstm_ref.flax_lstm import FLAX_LSTM_CELL_VARIANTS, FLAX_OPTIMIZED_VARIANTS, flip_sequences
from lstm_ref.harness.compare import compare, run_and_compare
from lstm_ref.harness.diagnose import WITHIN, catalogue, diagnose, probe
from lstm_ref.harness.oracles.client import OracleError

from .test_check_artifacts import lstm_ref  # noqa: F401  (the fixture: the CLI in-process on the session's pool)

# The kinds this module checks: `make mutants` runs it against their mutants.
pytestmark = pytest.mark.kinds("flax_lstmcell", "flax_optimized")

CELL, OPTIMIZED = "flax.nnx.LSTMCell", "flax.nnx.OptimizedLSTMCell"
KINDS = [CELL, OPTIMIZED]


def _case(kind, config, *, seed=0, batch=3, time=7, features=3, lengths=None, states=False):
    ref = from_config(kind, config)
    rng = np.random.default_rng(seed)
    weights = build_weights(ref, rng, features)
    x = rng.standard_normal((batch, time, features)).astype(ref.policy.variable)
    mask = None if lengths is None else np.arange(time)[None, :] < np.asarray(lengths)[:, None]
    initial = {s: (0.7 * rng.standard_normal((batch, ref.units))).astype(ref.policy.variable) for s in ("h0", "c0")}
    return Case(kind, config, x, weights, mask, **(initial if states else {}))


@pytest.mark.live
@pytest.mark.parametrize("kind", KINDS)
def test_weight_names_and_shapes_are_the_cells_nnx_state(oracle_for, kind):
    config = {"hidden_features": 4}
    reply, _ = oracle_for(kind).request({"op": "shapes", "kind": kind, "config": config, "features": 3}, {})
    expected = {k: tuple(v) for k, v in from_config(kind, config).weight_shapes(3).items()}
    assert {k: tuple(v) for k, v in reply["shapes"].items()} == expected


def test_the_two_cells_are_one_cell_in_two_layouts():
    """OptimizedLSTMCell's dense_i/dense_h are LSTMCell's eight layers side by
    side (gates i, f, g, o): the reference gives the same bits for both."""
    cell = _case(CELL, {"hidden_features": 4, "reverse": True}, lengths=[7, 3, 0], states=True)
    ref = cell.reference()
    packed = ref.pack(cell.weights)
    optimized = cell.replace(
        kind=OPTIMIZED,
        weights={
            "dense_i/kernel": packed["kernel"],
            "dense_h/kernel": packed["recurrent_kernel"],
            "dense_h/bias": packed["bias"],
        },
    )
    a, b = cell.run(), optimized.run()
    for name in a.fields:
        np.testing.assert_array_equal(a[name], b[name], strict=True, err_msg=name)


# -- what nnx.RNN does with seq_lengths, reverse and keep_order, pinned in the framework ------------


@pytest.mark.live
def test_seq_lengths_mask_nothing_and_pick_the_carry(oracle_for):
    """Past a row's length the framework keeps stepping: with seq_lengths its
    outputs are bitwise those without; the carry is the one after step
    L - 1, and for L = 0 the one after the LAST step (``_select_last_carry``:
    ``seq_lengths - 1`` is -1, which jnp indexing wraps), not the initial
    carry.  The reference computes all three."""
    oracle = oracle_for(CELL)
    case = _case(CELL, {"hidden_features": 3}, lengths=[7, 3, 0], states=True)
    masked, whole = oracle.run(case), oracle.run(case.replace(mask=None))
    np.testing.assert_array_equal(masked["h"], whole["h"], strict=True)
    np.testing.assert_array_equal(masked["final_h"][2], whole["final_h"][2], strict=True)  # L = 0: the last step's
    assert not np.allclose(masked["final_c"][2], case.initial_state["c0"][2])
    np.testing.assert_array_equal(masked["final_h"][1], whole["h"][1, 2], strict=True)  # L = 3: after step 2
    assert run_and_compare(case, masked)[3].passed


@pytest.mark.live
def test_reverse_reads_each_row_backwards_within_its_length(oracle_for):
    """reverse=True: Flax's flip_sequences, each row reversed within its length
    and its padding reversed in place; keep_order=False returns processing
    order, keep_order=True input order.  A reversed row run forward alone
    gives the same valid outputs and carry."""
    oracle = oracle_for(CELL)
    lengths = [7, 4, 2]
    back = _case(CELL, {"hidden_features": 3, "reverse": True}, lengths=lengths)
    kept = back.replace(config={**back.config, "keep_order": True})
    out, out_kept = oracle.run(back), oracle.run(kept)
    np.testing.assert_array_equal(flip_sequences(out["h"], np.asarray(lengths)), out_kept["h"], strict=True)
    forward = back.replace(config={"hidden_features": 3}, x=flip_sequences(back.x, np.asarray(lengths)))
    ahead = oracle.run(forward)
    valid = np.arange(7)[None, :] < np.asarray(lengths)[:, None]
    np.testing.assert_allclose(ahead["h"][valid], out["h"][valid], rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(ahead["final_c"], out["final_c"], rtol=1e-6, atol=1e-7)
    for case, desired in ((back, out), (kept, out_kept)):
        assert run_and_compare(case, desired)[3].passed


@pytest.mark.live
def test_dtype_must_be_param_dtype(oracle_for):
    """Why the reference refuses dtype != param_dtype: nnx.RNN's default carry
    is param_dtype, and the scan refuses the float64 step of float32 params."""
    case = _case(CELL, {"hidden_features": 2}, time=3)
    config = {**case.config, "dtype": "float64"}
    with pytest.raises(OracleError, match="carry input and carry output must have equal types"):
        oracle_for(CELL).request({"op": "run", "kind": CELL, "config": config}, case.arrays())


# -- linen: the same numbers under another API ------------------------------------------------------


@pytest.mark.live
@pytest.mark.parametrize("linen_cell", ["LSTMCell", "OptimizedLSTMCell"])
def test_linen_cells_compute_what_nnx_computes(oracle_for, linen_cell):
    """flax.linen's LSTMCell and OptimizedLSTMCell (parameters per gate, ``if``
    for ``if_``) under linen's RNN give nnx.LSTMCell's numbers: linen is the
    same kind under another API, not a kind of its own.  And linen's apply
    drops a bias put on the input side (``ii/bias``) silently: the
    "bias put on the input side" fault of the catalogue."""
    oracle = oracle_for(CELL)
    case = _case(CELL, {"hidden_features": 3, "reverse": True, "keep_order": True}, lengths=[7, 5, 1], states=True)
    meta = {"op": "linen", "cell": linen_cell, "config": case.config}
    _, linen = oracle.request(meta, case.arrays())
    nnx = oracle.run(case)
    for name in nnx:
        np.testing.assert_allclose(linen[name], nnx[name], rtol=2e-6, atol=2e-6, err_msg=name)
    moved = {k: (np.zeros_like(v) if k.endswith("/bias") else v) for k, v in case.weights.items()}
    arrays = {**case.replace(weights=moved).arrays(), "extra:ii/bias": case.weights["hi/bias"]}
    _, dropped = oracle.request(meta, arrays)
    bias_on_input_side = next(v for v in FLAX_LSTM_CELL_VARIANTS if v.name.startswith("bias put on the input side"))
    wrong = bias_on_input_side.run(case)
    np.testing.assert_allclose(dropped["h"], wrong.h, rtol=1e-5, atol=1e-5)


# -- the wrong semantics are caught by the tolerance ------------------------------------------------


@pytest.mark.live
@pytest.mark.parametrize("kind", KINDS)
def test_every_wrong_semantics_fails_against_the_framework(oracle_for, kind):
    """Each variant of the record (the state order swapped, the ConvLSTM +1 on
    the forget gate, the bias put on the input side, gate layers swapped,
    reverse's order, zeros past a length), run on a case it applies to, is
    over the kind's tolerance against what Flax computed: the tolerance can
    tell each from the truth."""
    variants = FLAX_LSTM_CELL_VARIANTS if kind == CELL else FLAX_OPTIMIZED_VARIANTS
    case = _case(kind, {"hidden_features": 4, "reverse": True}, lengths=[7, 4, 2], states=True)
    desired = oracle_for(kind).run(case)
    ref = case.reference()
    assert run_and_compare(case, desired)[3].passed
    for variant in variants:
        assert variant.applies(case), variant.name
        wrong = variant.run(case)
        result = compare(wrong, desired, ref.policy.compute, kind=kind)
        assert not result.passed, f"{variant.name} is within tolerance of Flax (ratio {result.ratio:.3g})"


@pytest.mark.parametrize("kind", KINDS)
def test_diagnose_names_every_flax_fault(kind):
    """The catalogue has the Flax faults (the carry's (c, h) order, ConvLSTM's
    forget +1, the bias put on the input side), each named exactly on the
    probe; on OptimizedLSTMCell the dropped input-side bias is the common
    "bias missing" (the same arithmetic: reported as one, both names)."""
    case = probe(kind, {"hidden_features": 4, "reverse": True}, 5)
    names = {f.name for f in catalogue(kind)}
    assert {"initial h and c swapped", "final h and c swapped"} <= names
    assert any("ConvLSTMCell" in n for n in names) and any("input side" in n for n in names)
    missed = []
    for fault in catalogue(kind):
        if not fault.applies(case):
            continue
        wrong, truth = fault.run(case), case.run()
        if all(np.array_equal(wrong[k], truth[k]) for k in truth.fields):
            # the common gate-order faults permute blocks of one weight: LSTMCell has one layer per gate
            # (its own variants read the layers in other orders)
            assert kind == CELL and fault.name.startswith("gate blocks read as"), fault.name
            continue
        d = diagnose(case, wrong.fields, pairs=False)
        best = d.best()
        same = {"bias missing", "bias put on the input side, where linen drops it"}
        if kind == OPTIMIZED and fault.name in same:
            assert {best.name, *best.equivalent} == same and best.ratio <= 1, (fault.name, best)
            continue
        if d.verdict != WITHIN or best.name != fault.name or best.equivalent:
            missed.append((fault.name, d.verdict, best and best.name, best and best.equivalent))
    assert not missed


# -- lstm-ref check on a Flax checkpoint ------------------------------------------------------------


def _save(oracle, case, path, fmt, **extra):
    meta = {"op": "save_checkpoint", "kind": case.kind, "config": case.config, "features": 3, "path": str(path)}
    oracle.request({**meta, "format": fmt, **extra}, {f"w:{k}": v for k, v in case.weights.items()})


@pytest.mark.live
def test_check_reads_flax_checkpoints(oracle_for, lstm_ref, tmp_path):  # noqa: F811
    """A msgpack'd nnx state, a linen param tree and an orbax checkpoint
    directory, each given --kind, pass; without --kind, or with a gate
    missing, exit 2 saying why."""
    oracle = oracle_for(CELL)
    cell = _case(CELL, {"hidden_features": 3})
    opt = _case(OPTIMIZED, {"hidden_features": 4})
    _save(oracle, cell, tmp_path / "cell.msgpack", "msgpack")
    _save(oracle, cell, tmp_path / "linen.msgpack", "msgpack", linen=True)
    _save(oracle, opt, tmp_path / "opt_orbax", "orbax")
    _save(oracle, cell, tmp_path / "no_hf.msgpack", "msgpack", drop=["cell/hf/bias"])
    for name, kind in (("cell.msgpack", CELL), ("linen.msgpack", CELL), ("opt_orbax", OPTIMIZED)):
        code, out, err = lstm_ref("check", name, "--kind", kind, "--json", f"{name}.json")
        assert code == 0, out + err
        assert "PASS: 2/2" in out, out
    code, out, err = lstm_ref("check", "cell.msgpack")
    assert code == 2 and "give --kind, one of ['flax.nnx.LSTMCell', 'flax.nnx.OptimizedLSTMCell']" in err, err
    code, out, err = lstm_ref("check", "no_hf.msgpack", "--kind", CELL)
    assert code == 2 and "cell 'cell': flax.nnx.LSTMCell: missing weight(s) ['hf/bias']" in err, err
    code, out, err = lstm_ref("check", "cell.msgpack", "--kind", OPTIMIZED)
    assert code == 2 and "holds flax.nnx.LSTMCell parameters at ['cell']" in err, err


def test_a_missing_gate_is_the_references_weight_error():
    from lstm_ref.harness.flax_checkpoints import lstms

    case = _case(CELL, {"hidden_features": 3})
    flat = {f"params/cell/{k.replace('if_', 'if')}": v for k, v in case.weights.items() if k != "ig/kernel"}
    with pytest.raises(WeightError, match=r"cell 'cell': flax.nnx.LSTMCell: missing weight\(s\) \['ig/kernel'\]"):
        lstms(flat, CELL, {}, None, "tree")


# -- converters: what the live pairs of test_converters.py do not show -------------------------------


def test_reverse_in_processing_order_converts_through_align():
    """A Flax reverse=True, keep_order=False LSTM (outputs in processing order,
    each row reversed within its length) to ONNX and Keras: the target's
    reference on the converted case is the source's, put in the target's
    layout by ``align`` (zeros past a length, Keras' whole-sequence flip)."""
    from lstm_ref.convert import convert

    source = _case(CELL, {"hidden_features": 3, "reverse": True}, lengths=[7, 4, 2], states=True)
    for target in ("onnx.LSTM", "keras.layers.LSTM"):
        conversion = convert(source, target)
        aligned = conversion.align(source.run().fields)
        there = conversion.case.run()
        for name in aligned:
            np.testing.assert_allclose(there[name], aligned[name], rtol=1e-5, atol=1e-6, err_msg=f"{target}: {name}")


def test_the_input_side_bias_must_be_folded_in():
    """torch's two biases into Flax's one: bias_ih + bias_hh on the h side.
    A converter that kept bias_hh alone (the input side dropped) is over
    the float32 tolerance against the source."""
    from lstm_ref.convert import convert

    config = {"input_size": 3, "hidden_size": 4}
    rng = np.random.default_rng(3)
    weights = build_weights(from_config("torch.nn.LSTM", config), rng, 3)
    torch_case = Case("torch.nn.LSTM", config, rng.standard_normal((3, 7, 3)).astype("float32"), weights)
    conversion = convert(torch_case, CELL)
    flax = conversion.case
    aligned = conversion.align(torch_case.run().fields)
    ok = compare(flax.run(), aligned, np.float32, kind=CELL)
    assert ok.passed, ok.ratio
    h_only = {n: torch_case.weights["bias_hh_l0"][k * 4 : (k + 1) * 4] for k, n in enumerate(("hi", "hf", "hg", "ho"))}
    dropped = flax.replace(weights={**flax.weights, **{f"{n}/bias": b for n, b in h_only.items()}})
    assert not compare(dropped.run(), aligned, np.float32, kind=CELL).passed


def test_a_chaotic_draw_is_the_references_own_limit():
    """Why the strategy draws negative-capable gates (tanh) tame: with tanh
    gates at saturating scales the run is chaotic.  The reference alone, x
    moved by one float64 ulp, moves h by ~1e-3 after 45 steps -- a billion
    times the float64 tolerance -- so no bound on Flax's float64 (XLA's tanh
    is up to 6 ulp from NumPy's) could hold there, and none is claimed."""
    config = {"hidden_features": 6, "gate_fn": "tanh", "activation_fn": "soft_sign", "param_dtype": "float64"}
    ref = from_config(CELL, config)
    rng = np.random.default_rng(10)
    weights = build_weights(ref, rng, 1, scales=(-6.0, 1.0, 8.0, 0.3), recurrent_scale=1.0)
    x = rng.standard_normal((4, 45, 1))
    moved = np.max(np.abs(ref.run(x, weights).h - ref.run(x * (1 + 2**-52), weights).h))
    assert moved > 1e6 * compare_tolerance(np.float64), moved


def compare_tolerance(dtype):
    from lstm_ref.harness.records import tolerance_of

    return tolerance_of(CELL, dtype).atol
