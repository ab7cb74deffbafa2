"""``make mutants``: inject plausible semantic bugs into lstm_ref, one at a
time, run the parity suite against each, and print the mutation score.

Each mutant names the kind whose semantics it breaks (a record id) and is a
list of exact (file, old, new) source edits, applied to a scratch copy of
the repository; the suite runs there with ``pytest -x``: the goldens (run
and gradient), that kind's record-driven live tests (``test_kinds.py``) and
the test modules that declare it (``pytestmark = pytest.mark.kinds(id)``).  A mutant that survives means a test case is missing:
add the case.

    python -m tools.mutants [NAME ...] [--tests PATH ...]

runs only the mutants whose name contains a NAME; ``--tests`` runs the given
test paths (next to the goldens) in place of each kind's suite, baseline
included -- e.g. ``python -m tools.mutants grad: --tests
parity_tests/test_grad.py`` proves the gradient mutants are caught there.
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from lstm_ref.harness.oracles.client import ORACLES
from parity_tests.pytest_helpers import modules_checking

ROOT = Path(__file__).resolve().parents[1]

K, T1, LN, ACT, RUN, REF, K2 = (
    "lstm_ref/keras_lstm.py",
    "lstm_ref/tf1_cells.py",
    "lstm_ref/layer_norm_cells.py",
    "lstm_ref/activations.py",
    "lstm_ref/runner.py",
    "lstm_ref/reference.py",
    "lstm_ref/tf_keras_lstm.py",
)
PT, OX, ST, CV = "lstm_ref/torch_lstm.py", "lstm_ref/onnx_lstm.py", "lstm_ref/stacked.py", "lstm_ref/convert.py"
DT, GR = "lstm_ref/dtypes.py", "lstm_ref/grad.py"
# Record ids: which kind a mutant breaks, and so which tests run.
KERAS3, BASIC, LSTMCELL, CONTRIB, TFA, KERAS2 = "keras3", "tf1_basic", "tf1_lstmcell", "contrib", "tfa", "tf_keras"
TORCH, ONNX = "torch", "onnx"

MUTANTS = [
    (
        "Keras gate order read as i,f,o,c",
        KERAS3,
        [(K, "z_i, z_f, z_c, z_o = split_gates(z)", "z_i, z_f, z_o, z_c = split_gates(z)")],
    ),
    (
        "Keras gate order read as i,c,f,o",
        KERAS3,
        [(K, "z_i, z_f, z_c, z_o = split_gates(z)", "z_i, z_c, z_f, z_o = split_gates(z)")],
    ),
    (
        "TF1 order i,j,f,o read as i,f,j,o",
        BASIC,
        [(T1, "i, j, f, o = self._gates(params, xz_t, h_prev)", "i, f, j, o = self._gates(params, xz_t, h_prev)")],
    ),
    (
        "forget_bias missing",
        BASIC,
        [(T1, "c = c_prev * sig(f + self._const(self.forget_bias, f)) + sig(i)", "c = c_prev * sig(f) + sig(i)")],
    ),
    (
        "forget_bias doubled",
        BASIC,
        [
            (
                T1,
                "c = c_prev * sig(f + self._const(self.forget_bias, f)) + sig(i)",
                "c = c_prev * sig(f + 2 * self._const(self.forget_bias, f)) + sig(i)",
            )
        ],
    ),
    (
        "forget_bias added outside the sigmoid",
        BASIC,
        [
            (
                T1,
                "c = c_prev * sig(f + self._const(self.forget_bias, f)) + sig(i)",
                "c = c_prev * (sig(f) + self._const(self.forget_bias, f)) + sig(i)",
            )
        ],
    ),
    (
        "Keras 2 hard_sigmoid under Keras 3",
        KERAS3,
        [
            (
                ACT,
                "    return relu6(x + _c(x, 3)) / _c(x, 6)",
                "    return np.clip(_c(x, 0.2) * x + _c(x, 0.5), _c(x, 0), _c(x, 1))",
            )
        ],
    ),
    (
        "go_backwards output flipped back to input order",
        KERAS3,
        [
            (
                RUN,
                "    fields = {cell.OUTPUT: outs.transpose(1, 0, 2)}",
                "    if cell.go_backwards:\n        outs, seqs = outs[::-1], {k: v[::-1] for k, v in seqs.items()}\n"
                "    fields = {cell.OUTPUT: outs.transpose(1, 0, 2)}",
            )
        ],
    ),
    ("mask zeroes the output", KERAS3, [(RUN, "0 if cell.zero_output_for_mask else prev_out", "0")]),
    (
        "mask ignored",
        KERAS3,
        [
            (
                RUN,
                "            if mask is not None:\n                m = mask",
                "            if False:\n                m = mask",
            )
        ],
    ),
    (
        "h0 used as the previous output before the first valid step",
        KERAS3,
        [(RUN, "prev_out = np.zeros((batch, cell.out_units), dtype=dtype)", "prev_out = state[cell.STATE.index('h')]")],
    ),
    (
        "output peephole sees the unclipped c",
        LSTMCELL,
        [
            (
                T1,
                "        if self.cell_clip is not None:\n            c = self._clip(c, self.cell_clip)\n        if self.use_peepholes:",
                "        c_raw = c\n        if self.cell_clip is not None:\n            c = self._clip(c, self.cell_clip)\n        if self.use_peepholes:",
            ),
            (
                T1,
                'm = sig(o + params["w_o_diag"] * c) * self.activation(c)',
                'm = sig(o + params["w_o_diag"] * c_raw) * self.activation(c)',
            ),
        ],
    ),
    (
        "c not clipped",
        LSTMCELL,
        [
            (
                T1,
                "        if self.cell_clip is not None:\n            c = self._clip(c, self.cell_clip)",
                "        if False:\n            c = self._clip(c, self.cell_clip)",
            )
        ],
    ),
    (
        "cell_clip applied after the output",
        LSTMCELL,
        [
            (
                T1,
                "        if self.cell_clip is not None:\n            c = self._clip(c, self.cell_clip)\n        if self.use_peepholes:",
                "        if self.use_peepholes:",
            ),
            (
                T1,
                "        if self.num_proj is not None:\n            m = m @",
                "        if self.cell_clip is not None:\n            c = self._clip(c, self.cell_clip)\n        if self.num_proj is not None:\n            m = m @",
            ),
        ],
    ),
    ("proj_clip missing", LSTMCELL, [(T1, "            if self.proj_clip is not None:", "            if False:")]),
    (
        "tfa: per-gate layer norm instead of joint",
        TFA,
        [
            (
                LN,
                """        gamma, beta = params[f"{name}/gamma"], params[f"{name}/beta"]
        if self.fused:""",
                """        gamma, beta = params[f"{name}/gamma"], params[f"{name}/beta"]
        if v.shape[-1] == 4 * self.units:
            return np.concatenate([fused_layer_norm(b, g, bb, self.norm_epsilon) for b, g, bb in
                                   zip(np.split(v, 4, -1), np.split(gamma, 4), np.split(beta, 4))], axis=-1)
        if self.fused:""",
            )
        ],
    ),
    (
        "contrib: joint layer norm instead of per-gate",
        CONTRIB,
        [
            (
                LN,
                "        return [self._norm(params, scope, block) for scope, block in zip(self.NORMS, np.split(z, 4, axis=-1))]",
                "        gamma = np.concatenate([params[f'{s}/gamma'] for s in self.NORMS[:4]])\n"
                "        beta = np.concatenate([params[f'{s}/beta'] for s in self.NORMS[:4]])\n"
                "        return np.split(batch_norm_layer_norm(z, gamma, beta, self.epsilon), 4, axis=-1)",
            )
        ],
    ),
    (
        "contrib: Keras' epsilon 1e-3 instead of 1e-12",
        CONTRIB,
        [(LN, "CONTRIB_EPSILON_DEFAULT = 1e-12", "CONTRIB_EPSILON_DEFAULT = 1e-3")],
    ),
    ("tfa: no state norm", TFA, [(LN, '        c = self._norm(params, "state_norm", c)\n', "")]),
    (
        "contrib: no state norm",
        CONTRIB,
        [(LN, '            c = self._norm(params, "state", c)\n', "            pass\n")],
    ),
    (
        "tfa: bias added before the norms",
        TFA,
        [
            (
                LN,
                """        return self._norm(params, "kernel_norm", tf215_matmul(x, params["kernel"]))""",
                """        xk = tf215_matmul(x, params["kernel"])
        return self._norm(params, "kernel_norm", xk + params["bias"] if self.use_bias else xk)""",
            ),
            (
                LN,
                """        if self.use_bias:
            z = z + params["bias"]
        z_i, z_f, z_c, z_o""",
                """        z_i, z_f, z_c, z_o""",
            ),
        ],
    ),
    (
        "tf_keras: Keras 3 hard_sigmoid under Keras 2",
        KERAS2,
        [
            (
                K2,
                "        return activations.get_keras2(name, role=role, platform=self.platform)",
                "        return activations.hard_sigmoid if name == 'hard_sigmoid' else activations.get_keras2(name, role=role, platform=self.platform)",
            )
        ],
    ),
    (
        "tf_keras: activation=None read as tanh (the TF1 cells' rule)",
        KERAS2,
        [
            (
                K2,
                "        return activations.get_keras2(name, role=role, platform=self.platform)",
                "        return activations.tanh if name is None else activations.get_keras2(name, role=role, platform=self.platform)",
            )
        ],
    ),
    (
        "tf_keras: unrolled go_backwards zeroing without TF's bug",
        KERAS2,
        [
            (
                K2,
                "        self.zero_by_unreversed_mask = self.unroll and self.go_backwards and self.zero_output_for_mask",
                "        self.zero_by_unreversed_mask = False",
            )
        ],
    ),
    (
        "float32 accumulation in float64 oracle mode",
        KERAS3,
        [
            (
                K,
                '        xk = x @ params["kernel"]',
                '        xk = (x.astype(np.float32) @ params["kernel"].astype(np.float32)).astype(x.dtype)',
            )
        ],
    ),
    # -- float16: each claim of the reference about where TF rounds, flipped
    (
        "float16 sigmoid in float32, rounded once (not Eigen's e / (1 + e) in half)",
        KERAS3,
        [
            (
                ACT,
                '    e = exponential(x)\n    one = _c(x, 1)\n    with np.errstate(invalid="ignore"):  # inf / inf where exp overflowed: replaced by 1\n'
                "        return np.where(np.isposinf(e), one, e / (one + e))",
                "    return (1 / (1 + np.exp(-x.astype(np.float32)))).astype(x.dtype)",
            )
        ],
    ),
    (
        "float16 transcendental primitives in float64, rounded once (not float32)",
        KERAS3,
        [
            (
                ACT,
                "            return fn(x.astype(np.float32)).astype(x.dtype, copy=False)",
                "            return fn(x.astype(np.float64)).astype(x.dtype, copy=False)",
            )
        ],
    ),
    (
        "float16 softplus with float16's epsilon (not Eigen's 2^-13)",
        KERAS3,
        [
            (
                ACT,
                "    return 2.0**-13 if dtype == np.float16 else np.finfo(dtype).eps",
                "    return np.finfo(dtype).eps",
            )
        ],
    ),
    (
        "elu as expm1 (not exp(x) - 1)",
        KERAS3,
        [(ACT, "    return np.where(x < 0, exponential(x) - _c(x, 1), x)", "    return np.where(x < 0, _expm1(x), x)")],
    ),
    (
        "Keras float16 h @ recurrent_kernel accumulated in half (TF 2.15's, not 2.21's float32)",
        KERAS3,
        [
            (
                K,
                '        z = h_prev @ params["recurrent_kernel"]\n',
                '        z = np.zeros(h_prev.shape[:-1] + params["recurrent_kernel"].shape[-1:], h_prev.dtype)\n'
                "        for k in range(h_prev.shape[-1]):\n"
                '            z = z + h_prev[..., k, None] * params["recurrent_kernel"][k]\n',
            )
        ],
    ),
    (
        "Keras float16 z = x@K + h@R + b summed in float32, rounded once (not op by op)",
        KERAS3,
        [
            (
                K,
                '        z = h_prev @ params["recurrent_kernel"]\n'
                "        z += xz_t  # == x_t @ kernel + h @ recurrent_kernel, TF's rounding\n"
                "        if self.use_bias and self.implementation == 2:\n"
                '            z += params["bias"]',
                '        z = h_prev.astype(np.float32) @ params["recurrent_kernel"].astype(np.float32) + xz_t\n'
                "        if self.use_bias and self.implementation == 2:\n"
                '            z = z + params["bias"]\n'
                "        z = z.astype(h_prev.dtype)",
            )
        ],
    ),
    (
        "mixed_float16 computed in float32",
        KERAS3,
        [(DT, '"mixed_float16": ("float32", "float16")', '"mixed_float16": ("float32", "float32")')],
    ),
    (
        "TF1 float16: the x half rounded to half before the h half is added",
        BASIC,
        [
            (
                T1,
                "            return x.astype(np.float32) @ k.astype(np.float32)",
                "            return (x.astype(np.float32) @ k.astype(np.float32)).astype(np.float16)",
            )
        ],
    ),
    (
        "tfa float16 MatMul accumulated in float32 (TF 2.21's, not TF 2.15's half)",
        TFA,
        [(LN, "    if a.dtype != np.float16:\n        return a @ b", "    if True:\n        return a @ b")],
    ),
    (
        "float16 softmax summed in float32 (not in half, in order)",
        KERAS3,
        [
            (
                ACT,
                "    return e * (_c(x, 1) / _half_sum(e))",
                "    return e * (_c(x, 1) / e.astype(np.float32).sum(axis=-1, keepdims=True).astype(e.dtype))",
            )
        ],
    ),
    (
        "float16 softmax on AVX512-FP16 with oneDNN computed as Eigen's, in half",
        KERAS3,
        [
            (
                ACT,
                '    if fn is softmax and platform is not None and platform.half_softmax == "onednn":',
                "    if False:",
            )
        ],
    ),
    (
        "float16 oneDNN softmax evaluated in NumPy's float32 order, rounded once",
        KERAS3,
        [(ACT, "    wide = x.astype(np.float64)\n", "    wide = x.astype(np.float32)\n")],
    ),
    (
        "contrib float16 on AVX512-FP16: grappler's fused bias added in half",
        CONTRIB,
        [(LN, '        elif bias is not None and self.platform.half_graph_bias == "fused":', "        elif False:")],
    ),
    (
        "float16 rsqrt rounded once on every row (not two roundings on Eigen's scalar tail)",
        CONTRIB,
        [
            (
                LN,
                "        if v.dtype != np.float16 or v.ndim == 0:\n            return packet",
                "        if True:\n            return packet",
            )
        ],
    ),
    (
        "contrib float16: x @ kernel rounded to half before the h half is added",
        CONTRIB,
        [
            (
                LN,
                "            return x.astype(np.float32) @ k.astype(np.float32)",
                "            return (x.astype(np.float32) @ k.astype(np.float32)).astype(np.float16)",
            )
        ],
    ),
    (
        "tfa float16 one-row MatMul summed in order (not in Eigen GEMV's blocks of 16)",
        TFA,
        [(LN, "        block = k if k < 128 else (16 if n * b.itemsize < 32000 else 4)", "        block = k")],
    ),
    (
        "tfa float16 MatMul without the one-packet kernel's even/odd accumulators",
        TFA,
        [(LN, "    if last > first and panel:", "    if False:")],
    ),
    # -- PyTorch, ONNX Runtime, layers and directions, converters
    (
        "torch: gate rows read as i,g,f,o",
        TORCH,
        [(PT, "z_i, z_f, z_g, z_o = split_gates(xz_t + hz)", "z_i, z_g, z_f, z_o = split_gates(xz_t + hz)")],
    ),
    ("torch: bias_hh ignored (one bias)", TORCH, [(PT, '            hz += params["bias_hh"]', "            pass")]),
    (
        "torch: reverse direction's output left in processing order",
        TORCH,
        [(ST, "outputs.append(out if direction == FORWARD else reverse_within(out, lengths))", "outputs.append(out)")],
    ),
    (
        "torch: reverse direction reads the padded sequence whole",
        TORCH,
        [
            (
                ST,
                "seq = layer_input if direction == FORWARD else reverse_within(layer_input, lengths)",
                "seq = layer_input if direction == FORWARD else reverse_within(layer_input, None)",
            ),
            (
                ST,
                "outputs.append(out if direction == FORWARD else reverse_within(out, lengths))",
                "outputs.append(out if direction == FORWARD else reverse_within(out, None))",
            ),
        ],
    ),
    (
        "torch: h0/c0 slots read direction-major",
        TORCH,
        [(ST, "slot = layer * len(self.directions) + d", "slot = d * self.num_layers + layer")],
    ),
    (
        "onnx: gate rows i,o,f,c read as i,f,o,c",
        ONNX,
        [(OX, "z_i, z_o, z_f, z_c = (z[..., k * units", "z_i, z_f, z_o, z_c = (z[..., k * units")],
    ),
    (
        "onnx: clip ignored (onnx.reference)",
        ONNX,
        [(OX, "np.finfo(np.float32).max if self.clip is None else self.clip", "np.finfo(np.float32).max")],
    ),
    (
        "onnx: C clipped before h() (the spec's wording)",
        ONNX,
        [
            (
                OX,
                "        h = o * act_h(c)\n",
                "        h = o * act_h(c if self.clip is None else np.clip(c, -self.clip, self.clip))\n",
            )
        ],
    ),
    (
        "onnx: output peephole reads the previous C",
        ONNX,
        [
            (
                OX,
                "o = act_f(self._clip(z_o + p_o * c, b_o, given))",
                "o = act_f(self._clip(z_o + p_o * c_prev, b_o, given))",
            )
        ],
    ),
    (
        "onnx: a row of length 0 keeps its initial state",
        ONNX,
        [(OX, "        if mask is not None and not mask.any(axis=1).all():", "        if False:")],
    ),
    (
        "onnx: the spec's Affine default (alpha 1) for ONNX Runtime's 0",
        ONNX,
        [
            (
                OX,
                '"Affine": (lambda x, a, b: _c(x, a) * x + _c(x, b), 0.0, 0.0)',
                '"Affine": (lambda x, a, b: _c(x, a) * x + _c(x, b), 1.0, 0.0)',
            )
        ],
    ),
    (
        "convert: Keras gates written to ONNX unpermuted",
        ONNX,
        [(CV, "TO_ONNX = (0, 3, 1, 2)", "TO_ONNX = (0, 1, 2, 3)")],
    ),
    (
        "convert: the one bias copied into both torch biases",
        TORCH,
        [(CV, '"bias_h": None if bias is None else np.zeros_like(bias)', '"bias_h": bias')],
    ),
    # -- the backward (Reference.grad): caught by parity_tests/test_grad.py (finite
    # differences) and test_grad_golden.py (the frameworks' stored gradients)
    (
        "grad: gradient not stopped at a masked step",
        KERAS3,
        [
            (
                GR,
                "                dh_new = np.where(mt, dh + d_output, 0.0)\n                dc_new = np.where(mt, dc, 0.0)",
                "                dh_new = dh + d_output\n                dc_new = dc",
            )
        ],
    ),
    (
        "grad: clip subgradient taken as 1 past the boundary",
        LSTMCELL,
        [
            (
                GR,
                "    return ((v >= -bound) & (v <= bound)).astype(np.float64)",
                "    return np.ones_like(v, dtype=np.float64)",
            )
        ],
    ),
    (
        "grad: the two torch biases given half the gradient each",
        TORCH,
        [
            (
                PT,
                "out.update(bias_ih=grads.b, bias_hh=grads.b.copy())",
                "out.update(bias_ih=grads.b / 2, bias_hh=grads.b / 2)",
            )
        ],
    ),
    (
        "grad: truncated BPTT (h detached between steps)",
        KERAS3,
        [
            (
                GR,
                "            dh_prev = dhz_steps[t] @ cell.Wh.T",
                "            dh_prev = 0.0 * (dhz_steps[t] @ cell.Wh.T)",
            )
        ],
    ),
    (
        "grad: go_backwards gradient not flipped back",
        KERAS3,
        [
            (
                REF,
                "        if self.go_backwards:\n            dx = dx[:, ::-1]",
                "        if False:\n            dx = dx[:, ::-1]",
            )
        ],
    ),
    (
        "grad: layer-norm variance treated as a constant",
        CONTRIB,
        [
            (
                GR,
                "        d_var_path = xhat * np.mean(dxhat * xhat, axis=-1, keepdims=True)",
                "        d_var_path = 0.0",
            )
        ],
    ),
]


def scratch_copy(dest: Path):
    files = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    for rel in files:
        if (ROOT / rel).is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / rel, dest / rel)


def apply(dest: Path, edits):
    for rel, old, new in edits:
        path = dest / rel
        text = path.read_text()
        if text.count(old) != 1:
            raise SystemExit(f"mutant edit does not apply exactly once in {rel}: {old[:70]!r}")
        path.write_text(text.replace(old, new))


def tests_of(record_id):
    """The kind's record-driven live tests and its own modules (every kind's
    for ``None``: the clean baseline)."""
    from lstm_ref.harness.records import RECORDS
    from lstm_ref.variants import never

    if record_id is None:
        return sorted({t for r in RECORDS for t in tests_of(r.id)})
    record = next(r for r in RECORDS if r.id == record_id)
    tests = ["test_matches_its_framework_every_step"]
    if record.float64_twin is not never:  # a framework with no float64 kernel has no oracle-mode test
        tests.append("test_oracle_mode_is_its_framework_in_float64")
    kinds = [f"parity_tests/test_kinds.py::{t}[{record.id}]" for t in tests]
    return kinds + modules_checking(record.id)


def run_suite(dest: Path, record_id, timeout, tests=None):
    env = {
        **os.environ,
        "PYTHONPATH": str(dest),
        "LSTM_PARITY_EXAMPLES": os.environ.get("LSTM_PARITY_EXAMPLES", "25"),
        "HYPOTHESIS_PROFILE": "ci",
    }
    for spec in ORACLES.values():  # every oracle with a venv of its own
        # the scratch copy has no venvs: the oracles' interpreters stay the repository's
        if spec.python != "sys.executable":
            env.setdefault(f"LSTM_PARITY_{spec.name.upper()}_PYTHON", str(ROOT / spec.python))
    cmd = [
        sys.executable,
        "-m",
        "pytest",
        "-x",
        "-q",
        "-rf",
        "-p",
        "no:randomly",
        "-p",
        "no:cacheprovider",
        "parity_tests/test_golden.py",
        "parity_tests/test_grad_golden.py",
        *(tests or tests_of(record_id)),
    ]
    try:
        proc = subprocess.run(cmd, cwd=dest, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return None, "timeout"
    summary = [line for line in proc.stdout.splitlines() if line.startswith(("FAILED", "ERROR"))][:1]
    return proc.returncode, (summary[0] if summary else proc.stdout.strip().splitlines()[-1:] or [""])[0][:110]


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m tools.mutants",
        description="Run the mutants whose name contains any NAME (all by default) against the suite.",
    )
    parser.add_argument("names", nargs="*", metavar="NAME")
    parser.add_argument(
        "--tests",
        nargs="+",
        help="run these test paths (next to the goldens) instead of each kind's suite, the clean baseline too: "
        "e.g. --tests parity_tests/test_grad.py to prove a gradient mutant is caught there",
    )
    args = parser.parse_args(argv)
    caught = 0
    chosen = [m for m in MUTANTS if not args.names or any(o in m[0] for o in args.names)]
    with tempfile.TemporaryDirectory(prefix="lstm-mutants-") as tmp:
        base = Path(tmp) / "clean"
        base.mkdir()
        scratch_copy(base)
        code, detail = run_suite(base, None, 1800, args.tests)
        if code != 0:  # every kind's tests must pass on clean code, or a failure would pass for a catch
            raise SystemExit(f"the unmutated suite fails ({detail}); fix that first")
        for i, (name, record_id, edits) in enumerate(chosen, 1):
            dest = Path(tmp) / f"m{i}"
            shutil.copytree(base, dest)
            apply(dest, edits)
            t0 = time.perf_counter()
            code, detail = run_suite(dest, record_id, 900, args.tests)
            killed = code == 1  # a test failed; 2-5 (collection error, no tests, ...) are not catches
            caught += killed
            print(
                f"[{i:2d}/{len(chosen)}] {'CAUGHT  ' if killed else 'SURVIVED'} {name}  ({time.perf_counter() - t0:.0f}s) {detail}",
                flush=True,
            )
            shutil.rmtree(dest, ignore_errors=True)
    print(f"\nmutation score: {caught}/{len(chosen)} caught")
    return 0 if caught == len(chosen) else 1


if __name__ == "__main__":
    raise SystemExit(main())
