"""ONNX's ``LSTM`` operator as ONNX Runtime's CPU kernel computes it, in NumPy.

The operator is specified in ONNX's ``docs/Operators.md`` (LSTM-14); the
numbers are those of ``onnxruntime/core/providers/cpu/rnn/uni_directional_lstm.cc``
(``UniDirectionalLstm::ComputeImpl`` and ``GateComputations``), checked
against onnxruntime 1.32:

* gate order in the rows of ``W``/``R``/``B`` is i, o, f, c; ``P`` holds the
  peepholes i, o, f; every input has a leading ``num_directions`` axis;
* ``W``: (D, 4H, inputs), ``R``: (D, 4H, H) -- PyTorch's layout, not Keras';
  ``B``: (D, 8H), the input biases ``Wb`` then the recurrent biases ``Rb``,
  which ONNX Runtime sums once into one bias; ``B`` and ``P`` are optional
  (zeros);
* a gate's pre-activation is ``((x W^T + h R^T) + P * C) + (Wb + Rb)``,
  then clipped to [-clip, clip] when ``clip`` is set; the output gate's
  peephole reads the *new* cell state; ``h = o * h(C)``;
* ``clip`` bounds the gate inputs only.  ONNX says it "is applied to the
  input of activations", and ``C`` is the input of ``h()``, but ONNX Runtime
  does not clip it (``GateComputations`` writes ``C`` to a buffer named
  ``C_prev_clipped`` that is only scratch space): measured, clipping ``C``
  before ``h()`` is 0.12 away from ONNX Runtime where ``|C| > clip``;
* without ``clip`` the bound is FLT_MAX, and the clamp still runs
  (``LSTMBase``: ``GetAttrOrDefault("clip", numeric_limits<float>::max())``):
  an infinite gate input becomes +-FLT_MAX, and with ``B`` given
  (``clip_add_bias``: ``min(b, x)`` then ``max(-b, x)``) a NaN becomes
  +FLT_MAX, while without ``B`` (``clip_ignore_bias``: comparisons) it stays
  NaN;
* ``input_forget=1`` couples the gates: ``f = 1 - i``;
* ``activations`` lists f, g, h per direction (default Sigmoid, Tanh, Tanh),
  ``activation_alpha``/``activation_beta`` their parameters in that order;
* ``sequence_lens`` is a right-padded mask here; a row of length 0 ends with
  ``Y_h = Y_c = 0``, not its initial state (``ComputeImpl`` zeroes it);
* ``layout`` (0: time-major, 1: batch-major) changes the layout ONNX Runtime
  reads, never a number: ``run`` is batch-major, ``final_h`` is
  ``(num_directions, batch, H)`` as in layout 0.

No NumPy reference of ONNX itself is used as truth: ``onnx.reference``
ignores ``clip``.
"""

import numpy as np

from . import activations as keras_activations
from . import grad as G
from .errors import ConfigError
from .reference import register, split_gates
from .stacked import FORWARD, REVERSE, StackedReference, reverse_within
from .variants import Variant, drop_mask, has_partial_mask, set_config


def _c(x, value):
    return np.asarray(value, dtype=x.dtype)


# ONNX's activation functions as ONNX Runtime reads them (``rnn_helpers.cc``,
# ``ActivationFuncs``): (function(x, alpha, beta), default alpha, default
# beta), None where the function takes no such parameter.  The defaults are
# ONNX Runtime's, not the spec's: a parameter not given is 0 except for
# LeakyRelu (0.01), HardSigmoid (0.2, 0.5) and Elu (1.0) -- so Affine,
# ScaledTanh and ThresholdedRelu without their parameters are 0, 0 and
# relu (measured).  Names are matched case-insensitively, as ONNX Runtime
# lower-cases them.
ACTIVATIONS = {
    "Sigmoid": (lambda x, a, b: keras_activations.sigmoid(x), None, None),
    "Tanh": (lambda x, a, b: keras_activations.tanh(x), None, None),
    "Relu": (lambda x, a, b: np.maximum(x, _c(x, 0)), None, None),
    "Affine": (lambda x, a, b: _c(x, a) * x + _c(x, b), 0.0, 0.0),
    "LeakyRelu": (lambda x, a, b: np.where(x >= 0, x, _c(x, a) * x), 0.01, None),
    "ThresholdedRelu": (lambda x, a, b: np.where(x > _c(x, a), x, _c(x, 0)), 0.0, None),
    "ScaledTanh": (lambda x, a, b: _c(x, a) * np.tanh(_c(x, b) * x), 0.0, 0.0),
    "HardSigmoid": (lambda x, a, b: np.minimum(np.maximum(_c(x, a) * x + _c(x, b), _c(x, 0)), _c(x, 1)), 0.2, 0.5),
    "Elu": (lambda x, a, b: np.where(x >= 0, x, _c(x, a) * np.expm1(np.minimum(x, _c(x, 0)))), 1.0, None),
    "Softsign": (lambda x, a, b: x / (_c(x, 1) + np.abs(x)), None, None),
    "Softplus": (lambda x, a, b: np.logaddexp(_c(x, 0), x), None, None),
}
BY_LOWER = {name.lower(): name for name in ACTIVATIONS}


def _d_sigmoid(x, a, b):
    s = 0.5 * (1.0 + np.tanh(0.5 * x))
    return s * (1.0 - s)


# Their derivatives, float64, for Reference.grad: ONNX Runtime computes no
# gradient here (no training build), so where a function has a kink the
# choice is TF's and PyTorch's (lstm_ref/activations.py): relu-like
# functions pass the gradient where ``x > 0`` (x > alpha for
# ThresholdedRelu), Elu's is ``alpha exp(x)`` where ``x < 0``, and
# HardSigmoid's, a clip of ``alpha x + beta`` to [0, 1], passes on the closed
# interval (tf.clip_by_value's, torch.clamp's).
DERIVATIVES = {
    "Sigmoid": _d_sigmoid,
    "Tanh": lambda x, a, b: 1.0 - np.tanh(x) ** 2,
    "Relu": lambda x, a, b: (x > 0).astype(np.float64),
    "Affine": lambda x, a, b: np.full_like(x, a),
    "LeakyRelu": lambda x, a, b: np.where(x > 0, 1.0, a),
    "ThresholdedRelu": lambda x, a, b: (x > a).astype(np.float64),
    "ScaledTanh": lambda x, a, b: a * b * (1.0 - np.tanh(b * x) ** 2),
    "HardSigmoid": lambda x, a, b: np.where((a * x + b >= 0) & (a * x + b <= 1), a, 0.0),
    "Elu": lambda x, a, b: np.where(x < 0, a * np.exp(x), 1.0),
    "Softsign": lambda x, a, b: 1.0 / (1.0 + np.abs(x)) ** 2,
    "Softplus": lambda x, a, b: 0.5 * (1.0 + np.tanh(0.5 * x)),  # the sigmoid
}
DEFAULT_ACTIVATIONS = ("Sigmoid", "Tanh", "Tanh")


def _bound(name, alpha, beta):
    fn, default_alpha, default_beta = ACTIVATIONS[name]
    a = default_alpha if alpha is None else alpha
    b = default_beta if beta is None else beta

    def activation(x):
        return fn(x, a, b)

    def derivative(x):
        return DERIVATIVES[name](x, a, b)

    activation.__name__ = name
    activation.derivative = derivative  # lstm_ref.grad reads it
    return activation


@register
class OnnxLSTM(StackedReference):
    kind = "onnx.LSTM"
    GATES = "iofc"
    OPTIONS = {
        "hidden_size": None,
        "direction": FORWARD,
        "clip": None,
        "input_forget": 0,
        "activations": None,
        "activation_alpha": None,
        "activation_beta": None,
        "dtype": None,
    }
    INERT = frozenset({"layout", "name"})  # layout: the layout ONNX Runtime reads, not a number
    REFUSED = {
        "dtype": (lambda v: v not in (None, "float32"), "ONNX Runtime's CPU LSTM kernel is float32 only"),
        "layout": (lambda v: v not in (0, 1), "layout must be 0 (time-major) or 1 (batch-major)"),
    }

    def _configure(self, options):
        if options["hidden_size"] is None:
            raise ConfigError(f"{self.kind}: config['hidden_size'] is required")
        self.units = self.out_units = self._positive_int("hidden_size")
        direction = self._choice("direction", (FORWARD, REVERSE, "bidirectional"))
        self.directions = (FORWARD, REVERSE) if direction == "bidirectional" else (direction,)
        clip = options["clip"]
        if clip is not None and (isinstance(clip, bool) or not isinstance(clip, (int, float)) or not clip > 0):
            raise ConfigError(f"{self.kind}: config['clip'] must be a positive number or None, got {clip!r}")
        self.clip = None if clip is None else float(clip)
        self.input_forget = self._choice("input_forget", (0, 1))
        self.activation_sets = self._activation_sets(options)

    def _activation_sets(self, options):
        """Per direction, the bound ``(f, g, h)``; the alpha and beta lists
        are consumed in order by the functions that take them."""
        dirs = len(self.directions)
        names = options["activations"]
        names = list(DEFAULT_ACTIVATIONS * dirs) if names is None else list(names)
        if not all(isinstance(n, str) for n in names):
            raise ConfigError(f"{self.kind}: config['activations'] must be a list of names, got {names!r}")
        if len(names) != 3 * dirs:
            raise ConfigError(
                f"{self.kind}: config['activations'] must list 3 functions per direction "
                f"({3 * dirs} for direction={self.options['direction']!r}), got {len(names)}"
            )
        unknown = sorted({n for n in names if n.lower() not in BY_LOWER})
        if unknown:
            raise ConfigError(f"{self.kind}: unknown activation(s) {unknown}; ONNX's LSTM takes {sorted(ACTIVATIONS)}")
        names = [BY_LOWER[n.lower()] for n in names]
        alphas = list(options["activation_alpha"] or [])
        betas = list(options["activation_beta"] or [])
        bound = []
        for name in names:
            _, takes_alpha, takes_beta = ACTIVATIONS[name]
            alpha = alphas.pop(0) if takes_alpha is not None and alphas else None
            beta = betas.pop(0) if takes_beta is not None and betas else None
            bound.append(_bound(name, alpha, beta))
        if alphas or betas:
            raise ConfigError(
                f"{self.kind}: {len(alphas)} activation_alpha and {len(betas)} activation_beta "
                f"value(s) left over: no activation in {names} takes them (ONNX Runtime ignores "
                "them silently; remove them)"
            )
        return [tuple(bound[3 * d : 3 * d + 3]) for d in range(dirs)]

    def weight_shapes(self, input_dim):
        dirs, gates = len(self.directions), 4 * self.units
        return {
            "W": (dirs, gates, input_dim),
            "R": (dirs, gates, self.units),
            "B": (dirs, 2 * gates),
            "P": (dirs, 3 * self.units),
        }

    OPTIONAL_WEIGHTS = ("B", "P")

    def draw_weights(self, rng, input_dim, scales, recurrent_scale):
        """For :func:`lstm_ref.case.build_weights`: gate blocks on axis 1,
        each at its own scale and sign; ``Wb`` and ``Rb`` with different
        per-gate patterns; peepholes i, o, f with distinct signs."""
        from .case import GATE_BIASES, per_gate

        shapes = self.weight_shapes(input_dim)
        dirs, units = len(self.directions), self.units
        bias = np.concatenate([np.repeat(GATE_BIASES, units), np.repeat([-0.1, 0.3, 0.2, -0.2], units)])
        return {
            "W": per_gate(rng, shapes["W"], scales, np.float64, axis=1),
            "R": per_gate(rng, shapes["R"], [recurrent_scale * s for s in scales[::-1]], np.float64, axis=1),
            "B": bias[None] + 0.1 * rng.standard_normal((dirs, 8 * units)),
            "P": np.repeat([-0.8, 1.2, 1.0], units)[None] * rng.standard_normal((dirs, 3 * units)),
        }

    def params(self, weights, input_dim, dtype):
        """``B`` and ``P`` are optional inputs of the operator: zeros when absent."""
        given = isinstance(weights, dict) and "B" in weights  # which clamp runs (see _clip)
        given_p = isinstance(weights, dict) and "P" in weights  # whether grad returns P's gradient
        if isinstance(weights, dict):
            shapes = self.weight_shapes(input_dim)
            weights = {**{k: np.zeros(shapes[k]) for k in self.OPTIONAL_WEIGHTS if k not in weights}, **weights}
        params = super().params(weights, input_dim, dtype)
        params["B given"], params["P given"] = given, given_p
        return params

    def gate_blocks(self, name, shape):
        """Rows of ``W``/``R`` (axis 1); ``B`` is ``Wb`` then ``Rb``: two runs of 4."""
        return {"W": (1, 1), "R": (1, 1), "B": (1, 2)}.get(name)

    def direction_params(self, params, layer, direction):
        units = self.units
        bias = params["B"][direction]
        return {
            "W": params["W"][direction],
            "R": params["R"][direction],
            "bias": bias[: 4 * units] + bias[4 * units :],  # Wb + Rb, summed once (bias_WRi_)
            "P": params["P"][direction],
            "activations": self.activation_sets[direction],
            "B given": params["B given"],
        }

    def project_input(self, params, x):
        return x @ params["W"].T

    def _clip(self, z, bias, bias_given):
        """``clip_add_bias`` / ``clip_ignore_bias`` of ``rnn_helpers.cc``:
        ``x + b`` clamped to [-clip, clip], clip = FLT_MAX when unset."""
        z += bias
        bound = np.asarray(np.finfo(np.float32).max if self.clip is None else self.clip, z.dtype)
        if bias_given:  # std::min(b, x) then std::max(-b, x): NaN -> b
            z = np.where(z < bound, z, bound)
            return np.where(-bound < z, z, -bound)
        return np.where(z > bound, bound, np.where(z < -bound, -bound, z))  # NaN stays NaN

    def recurrence(self, params, xz_t, state):
        """``GateComputations``, gate order i, o, f, c::

        z = x W^T + h R^T
        i = f(clip(z_i + P_i * C_prev + b_i))
        f = 1 - i  (input_forget)  or  f(clip(z_f + P_f * C_prev + b_f))
        C = f * C_prev + i * g(clip(z_c + b_c))
        o = f(clip(z_o + P_o * C + b_o))
        h = o * h(C)                   (C itself is never clipped)
        """
        h_prev, c_prev = state
        act_f, act_g, act_h = params["activations"]
        units = self.units
        p_i, p_o, p_f = split_gates(params["P"], 3)
        b_i, b_o, b_f, b_c = split_gates(params["bias"])
        z = xz_t + h_prev @ params["R"].T
        z_i, z_o, z_f, z_c = (z[..., k * units : (k + 1) * units] for k in range(4))
        given = params["B given"]
        i = act_f(self._clip(z_i + p_i * c_prev, b_i, given))
        f = 1 - i if self.input_forget else act_f(self._clip(z_f + p_f * c_prev, b_f, given))
        c = f * c_prev + i * act_g(self._clip(z_c.copy(), b_c, given))
        o = act_f(self._clip(z_o + p_o * c, b_o, given))
        h = o * act_h(c)
        return h, (h, c)

    # -- Reference.grad (lstm_ref.grad): the shared cell, ONNX's weights -----
    # ONNX Runtime has no training in this build: the gradient's live check
    # is the torch oracle's, through the converter (parity_tests/test_grad_live.py).
    GRAD = True
    _SHARED_ORDER = (0, 2, 3, 1)  # rows i, o, f, c -> i, f, c, o
    _ONNX_ORDER = (0, 3, 1, 2)  # and back

    def grad_cell(self, params):
        """One direction's ``W``/``R`` rows, transposed, in the shared order;
        ``b = Wb + Rb``; peepholes i, o, f as ``(Pi, Pf, Po)``; f, g, h as
        ``ract``, ``act`` and ``act_out``; ``clip`` on every gate's input and
        ``input_forget`` as ``coupled``."""
        act_f, act_g, act_h = params["activations"]
        p_i, p_o, p_f = split_gates(params["P"], 3)
        order = self._SHARED_ORDER
        return G.LSTMCell(
            G.permute_blocks(params["W"].T, order),
            G.permute_blocks(params["R"].T, order),
            G.permute_blocks(params["bias"], order),
            None,
            act_g,
            act_f,
            P=(p_i, p_f, p_o),
            act_out=act_h,
            gate_clip=self.clip,
            coupled=bool(self.input_forget),
        )

    def grad_stack(self, per_direction, input_dim, params):
        """The directions' gradients stacked on axis 0 as ONNX stacks its
        weights; ``Wb`` and ``Rb`` (summed once) both get ``db``; ``B`` and
        ``P`` only where they were given."""
        cells = [per_direction[0, d] for d in range(len(self.directions))]
        back = self._ONNX_ORDER
        out = {
            "W": np.stack([G.permute_blocks(g.Wx, back).T for g in cells]),
            "R": np.stack([G.permute_blocks(g.Wh, back).T for g in cells]),
            "B": np.stack([np.tile(G.permute_blocks(g.b, back), 2) for g in cells]),
            "P": np.stack([np.concatenate([g.P[0], g.P[2], g.P[1]]) for g in cells]),
        }
        given = {"W": True, "R": True, "B": params["B given"], "P": params["P given"]}
        return {k: v for k, v in out.items() if given[k]}

    def _grad_output_rule(self, fields, up, mask):
        """A row of length 0 ends with zeros (as in :meth:`_run`): its final
        states take no gradient."""
        if mask is None or mask.any(axis=1).all():
            return fields, up
        empty = ~mask.any(axis=1)[None, :, None]
        finals = {f"final_{s}" for s in self.STATE}
        fields = {k: np.where(empty, 0.0, v) if k in finals else v for k, v in fields.items()}
        return fields, {k: np.where(empty, 0.0, v) if k in finals else v for k, v in up.items()}

    def _run(self, params, xs, state0, mask):
        trace = super()._run(params, xs, state0, mask)
        if mask is not None and not mask.any(axis=1).all():
            empty = ~mask.any(axis=1)  # ComputeImpl zeroes Y_h and Y_c of a row of length 0
            return trace.replace(
                **{
                    f"final_{s}": np.where(empty[None, :, None], 0, trace[f"final_{s}"]).astype(
                        trace[f"final_{s}"].dtype
                    )
                    for s in self.STATE
                }
            )
        return trace


# -- wrong ports this kind is confused with -------------------------------------


def _rows(perm):
    """Gate blocks of W, R and both halves of B read in another order."""

    def apply(weights, case):
        out = dict(weights)
        for name in ("W", "R"):
            blocks = np.split(np.asarray(weights[name]), 4, axis=1)
            out[name] = np.concatenate([blocks[p] for p in perm], axis=1)
        if "B" in weights:
            halves = np.split(np.asarray(weights["B"]), 2, axis=1)
            out["B"] = np.concatenate(
                [np.concatenate([np.split(h, 4, axis=1)[p] for p in perm], axis=1) for h in halves], axis=1
            )
        return out

    return apply


def _reverse_output_unflipped(trace, case):
    """The reverse direction's Y left in processing order (the keras-onnx and
    onnx#2881 confusion with Keras' go_backwards)."""
    ref = case.reference()
    lengths = None if case.mask is None else np.asarray(case.mask, bool).sum(axis=1)
    h = trace.h.copy()
    start = ref.units * ref.directions.index(REVERSE)
    h[..., start : start + ref.units] = reverse_within(h[..., start : start + ref.units], lengths)
    return trace.replace(h=h)


def _recurrent_bias_dropped(weights, case):
    out = dict(weights)
    b = np.array(weights["B"], copy=True)
    b[:, b.shape[1] // 2 :] = 0
    out["B"] = b
    return out


ONNX_LSTM_VARIANTS = (
    Variant("gate order i,f,c,o (Keras) read as i,o,f,c", weights=_rows((0, 2, 3, 1))),
    Variant("gate order i,f,g,o (PyTorch) read as i,o,f,c", weights=_rows((0, 2, 1, 3))),
    Variant("Rb dropped (one bias)", applies=lambda case: "B" in case.weights, weights=_recurrent_bias_dropped),
    Variant(
        "clip ignored (onnx.reference)",
        applies=lambda case: case.config.get("clip") is not None,
        config=set_config(clip=None),
    ),
    Variant(
        "reverse output left in processing order",
        applies=lambda case: case.config.get("direction", FORWARD) != FORWARD,
        trace=_reverse_output_unflipped,
    ),
    Variant("sequence_lens ignored", applies=has_partial_mask, inputs=drop_mask),
)
