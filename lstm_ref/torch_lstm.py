"""``torch.nn.LSTM`` (PyTorch 2.13, CPU, ``eval()``), in NumPy.

Read from ``torch/nn/modules/rnn.py`` (``LSTM.__init__`` names the weights,
``LSTM.forward`` calls ``torch.lstm``) and ``aten/src/ATen/native/RNN.cpp``
(``LSTMCell::operator()``, ``FullLayer``: on the CPU the input projection of
a whole layer is one ``linear`` over all steps), checked against torch 2.13:

* gate order in the rows of ``weight_ih_l{k}``/``weight_hh_l{k}`` is
  i, f, g, o -- Keras' i, f, c, o, but each weight is (4 * hidden, inputs),
  the transpose of a Keras kernel;
* two biases, ``bias_ih`` added to the input projection and ``bias_hh`` to
  the recurrent one: ``gates = (x W_ih^T + b_ih) + (h W_hh^T + b_hh)``;
* ``proj_size > 0`` projects the output: ``h = (o * tanh(c)) W_hr^T``, and
  the carried h (and ``weight_hh``'s columns) are ``proj_size`` wide;
* layer k > 0 reads the previous layer's output, both directions
  concatenated; ``dropout`` acts between layers in training only;
* states are stacked ``(num_layers * num_directions, batch, width)``, slot
  ``layer * num_directions + direction`` (see :mod:`lstm_ref.stacked`);
* variable lengths are a ``PackedSequence``: a right-padded mask here, with
  no row of length 0 (``pack_padded_sequence`` refuses one).

``run`` takes x batch-major whatever ``batch_first`` says: the flag only
changes the layout PyTorch reads, never a number.
"""

import numpy as np

from .activations import sigmoid, tanh
from .errors import ConfigError, InputError
from .grad import LSTMCell
from .reference import Reference, register, split_gates
from .stacked import FORWARD, REVERSE, StackedReference, reverse_within
from .variants import Variant, drop_mask, has_partial_mask


@register
class TorchLSTM(StackedReference):
    kind = "torch.nn.LSTM"
    GATES = "ifgo"
    OPTIONS = {
        "input_size": None,
        "hidden_size": None,
        "num_layers": 1,
        "bias": True,
        "bidirectional": False,
        "proj_size": 0,
        "dtype": None,
    }
    # batch_first changes the layout torch reads, not a number (run() is
    # batch-major); dropout acts between layers in training only.
    INERT = frozenset({"batch_first", "dropout", "device"})
    REFUSED = {
        "dtype": (
            lambda v: v not in (None, "float32", "float64"),
            "the reference runs torch's float32 and float64 CPU kernels only",
        ),
        "device": (lambda v: v not in (None, "cpu"), "the reference mirrors the CPU kernels"),
    }

    def _configure(self, options):
        for key in ("input_size", "hidden_size"):
            if options[key] is None:
                raise ConfigError(f"{self.kind}: config[{key!r}] is required")
        self.input_size = self._positive_int("input_size")
        self.units = self._positive_int("hidden_size")
        self.num_layers = self._positive_int("num_layers")
        self.use_bias = self._bool("bias")
        self.directions = (FORWARD, REVERSE) if self._bool("bidirectional") else (FORWARD,)
        proj = options["proj_size"]
        if isinstance(proj, bool) or not isinstance(proj, (int, np.integer)) or not 0 <= proj < self.units:
            raise ConfigError(
                f"{self.kind}: config['proj_size'] must be an integer in [0, hidden_size), got {proj!r} "
                "(torch: proj_size has to be smaller than hidden_size)"
            )
        self.proj_size = int(proj)
        self.out_units = self.proj_size or self.units
        dropout = self.config.get("dropout", 0.0)
        if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0 <= dropout <= 1:
            raise ConfigError(f"{self.kind}: config['dropout'] must be a number in [0, 1], got {dropout!r}")

    @staticmethod
    def suffix(layer, direction):
        """``_l{layer}`` plus ``_reverse`` for the second direction, as in
        ``state_dict()``."""
        return f"_l{layer}" + ("_reverse" if direction else "")

    def weight_shapes(self, input_dim):
        if input_dim != self.input_size:
            raise InputError(
                f"{self.kind}: x has {input_dim} features, but config['input_size'] is "
                f"{self.input_size} (torch: input.size(-1) must be equal to input_size)"
            )
        shapes = {}
        gates = 4 * self.units
        for layer in range(self.num_layers):
            width = input_dim if layer == 0 else self.out_units * len(self.directions)
            for d in range(len(self.directions)):
                s = self.suffix(layer, d)
                shapes[f"weight_ih{s}"] = (gates, width)
                shapes[f"weight_hh{s}"] = (gates, self.out_units)
                if self.use_bias:
                    shapes[f"bias_ih{s}"] = (gates,)
                    shapes[f"bias_hh{s}"] = (gates,)
                if self.proj_size:
                    shapes[f"weight_hr{s}"] = (self.proj_size, self.units)
        return shapes

    def draw_weights(self, rng, input_dim, scales, recurrent_scale):
        """For :func:`lstm_ref.case.build_weights`: gate blocks on the rows,
        each at its own scale and sign; the two biases with different
        per-gate patterns (so that dropping or doubling one shows)."""
        from .case import GATE_BIASES, per_gate

        out = {}
        for name, shape in self.weight_shapes(input_dim).items():
            if name.startswith("weight_ih"):
                w = per_gate(rng, shape, scales, np.float64, axis=0)
            elif name.startswith("weight_hh"):
                w = per_gate(rng, shape, [recurrent_scale * s for s in scales[::-1]], np.float64, axis=0)
            elif name.startswith("bias_ih"):
                w = np.repeat(GATE_BIASES, self.units) + 0.1 * rng.standard_normal(shape)
            elif name.startswith("bias_hh"):
                w = np.repeat([-0.1, 0.3, 0.2, -0.2], self.units) + 0.1 * rng.standard_normal(shape)
            else:  # weight_hr
                w = 0.8 * rng.standard_normal(shape)
            out[name] = w
        return out

    def gate_blocks(self, name, shape):
        """Gate blocks are the rows of ``weight_ih``/``weight_hh`` and the biases."""
        return (0, 1) if name.startswith(("weight_ih", "weight_hh", "bias_")) else None

    def direction_params(self, params, layer, direction):
        s = self.suffix(layer, direction)
        return {
            name: params.get(f"{name}{s}") for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh", "weight_hr")
        }

    def project_input(self, params, x):
        """``linear(x, weight_ih, bias_ih)``, hoisted over all steps."""
        xz = x @ params["weight_ih"].T
        if self.use_bias:
            xz += params["bias_ih"]
        return xz

    def recurrence(self, params, xz_t, state):
        """``LSTMCell`` in ``aten/src/ATen/native/RNN.cpp``, gate order i, f, g, o::

        gates = (x W_ih^T + b_ih) + (h W_hh^T + b_hh)
        i, f, g, o = gates.chunk(4, 1)
        c = sigmoid(f) * c_prev + sigmoid(i) * tanh(g)
        h = sigmoid(o) * tanh(c)           (then h W_hr^T with proj_size)
        """
        h_prev, c_prev = state
        hz = h_prev @ params["weight_hh"].T
        if self.use_bias:
            hz += params["bias_hh"]
        z_i, z_f, z_g, z_o = split_gates(xz_t + hz)
        c = sigmoid(z_f) * c_prev + sigmoid(z_i) * np.tanh(z_g)
        h = sigmoid(z_o) * np.tanh(c)
        if self.proj_size:
            h = h @ params["weight_hr"].T
        return h, (h, c)

    # -- the backward (lstm_ref.grad): the shared cell, torch's weights ----
    GRAD = True

    def grad_cell(self, params):
        """torch's weights as the shared cell's: ``Wx = weight_ih^T``,
        ``Wh = weight_hh^T``, ``b = bias_ih + bias_hh`` (so each bias gets
        the whole ``db``, as autograd gives it) and ``Wp = weight_hr^T``."""
        bias = params["bias_ih"] + params["bias_hh"] if self.use_bias else None
        proj = params["weight_hr"].T if self.proj_size else None
        return LSTMCell(params["weight_ih"].T, params["weight_hh"].T, bias, proj, tanh, sigmoid)

    def grad_weights(self, grads):
        out = {"weight_ih": grads.Wx.T, "weight_hh": grads.Wh.T}
        if self.use_bias:
            out.update(bias_ih=grads.b, bias_hh=grads.b.copy())
        if self.proj_size:
            out["weight_hr"] = grads.Wp.T
        return out

    def grad_weight_name(self, name, layer, direction):
        return f"{name}{self.suffix(layer, direction)}"

    def _check_mask(self, mask):
        super()._check_mask(mask)
        if mask is not None and not mask.any(axis=1).all():
            rows = np.flatnonzero(~mask.any(axis=1)).tolist()
            raise InputError(
                f"{self.kind}: mask row(s) {rows} have length 0; pack_padded_sequence refuses them "
                "(Length of all samples has to be greater than 0)"
            )


@register
class TorchLSTMCell(Reference):
    """``torch.nn.LSTMCell``, stepped over a sequence as a user's loop steps it::

        for t in range(T):
            h, c = cell(x[:, t], (h, c))      # (h, c) = zeros when not given

    ``LSTMCell.forward`` (``torch/nn/modules/rnn.py``) calls
    ``_VF.lstm_cell``; on the CPU that is ``LSTMCell::operator()`` in
    ``aten/src/ATen/native/RNN.cpp``, the same cell :class:`TorchLSTM`'s
    layers step (gates i, f, g, o on the rows; ``bias_ih`` and ``bias_hh``),
    with ``linear(x_t, weight_ih, bias_ih)`` computed at each step instead of
    once for the layer: the same numbers.  The weights are named as the
    module's ``state_dict`` names them: ``weight_ih`` (4 * hidden, input),
    ``weight_hh`` (4 * hidden, hidden), ``bias_ih``, ``bias_hh``.  There is
    no projection, no layer, no direction and no mask: a loop over a padded
    batch steps every row, so a mask is refused (give the valid steps only).
    """

    kind = "torch.nn.LSTMCell"
    GATES = "ifgo"
    OPTIONS = {"input_size": None, "hidden_size": None, "bias": True, "dtype": None}
    INERT = frozenset({"device"})
    REFUSED = TorchLSTM.REFUSED

    def _configure(self, options):
        for key in ("input_size", "hidden_size"):
            if options[key] is None:
                raise ConfigError(f"{self.kind}: config[{key!r}] is required")
        self.input_size = self._positive_int("input_size")
        self.units = self.out_units = self._positive_int("hidden_size")
        self.use_bias = self._bool("bias")
        self.proj_size = 0

    def weight_shapes(self, input_dim):
        if input_dim != self.input_size:
            raise InputError(
                f"{self.kind}: x has {input_dim} features, but config['input_size'] is "
                f"{self.input_size} (torch: input has inconsistent input_size)"
            )
        shapes = {"weight_ih": (4 * self.units, input_dim), "weight_hh": (4 * self.units, self.units)}
        if self.use_bias:
            shapes.update(bias_ih=(4 * self.units,), bias_hh=(4 * self.units,))
        return shapes

    # The cell's arithmetic and weight layout are nn.LSTM's (one layer, one direction).
    draw_weights = TorchLSTM.draw_weights
    gate_blocks = TorchLSTM.gate_blocks
    project_input = TorchLSTM.project_input
    recurrence = TorchLSTM.recurrence
    GRAD = True
    grad_cell = TorchLSTM.grad_cell
    grad_weights = TorchLSTM.grad_weights

    def _check_mask(self, mask):
        if mask is not None:
            raise InputError(
                f"{self.kind}: an LSTMCell steps every row it is given and takes no mask; "
                "run it on the valid steps only"
            )


# -- wrong ports this kind is confused with -------------------------------------


def _rows(perm):
    """Permute the gate blocks of every gate-shaped tensor's first axis (the
    layout of torch's weights)."""

    def apply(weights, case):
        out = {}
        for name, w in weights.items():
            if name.startswith(("weight_ih", "weight_hh", "bias_")):
                blocks = np.split(np.asarray(w), 4, axis=0)
                w = np.concatenate([blocks[p] for p in perm], axis=0)
            out[name] = w
        return out

    return apply


def _one_bias(weights, case):
    """Only ``bias_ih`` kept: a port from a one-bias framework that dropped ``bias_hh``."""
    return {k: (np.zeros_like(v) if k.startswith("bias_hh") else v) for k, v in weights.items()}


def _reverse_output_unflipped(trace, case):
    """The (last layer's) reverse-direction outputs left in processing order."""
    width = case.reference().out_units
    lengths = None if case.mask is None else np.asarray(case.mask, bool).sum(axis=1)
    h = trace.h.copy()
    h[..., width:] = reverse_within(h[..., width:], lengths)
    return trace.replace(h=h)


def _direction_major(trace, case):
    """``h_n`` stacked direction-major (slot ``direction * num_layers +
    layer``), as a port that builds the layers itself may stack it."""
    ref = case.reference()
    layers, dirs = ref.num_layers, len(ref.directions)
    order = [layer * dirs + d for d in range(dirs) for layer in range(layers)]
    return trace.replace(final_h=trace.final_h[order], final_c=trace.final_c[order])


def _bidirectional_deep(case):
    return case.config.get("bidirectional", False) and case.config.get("num_layers", 1) > 1


TORCH_LSTM_VARIANTS = (
    Variant("gate order i,g,f,o (TF1's i,j,f,o)", weights=_rows((0, 2, 1, 3))),
    Variant("gate order i,o,f,c (ONNX) read as i,f,g,o", weights=_rows((0, 3, 1, 2))),
    Variant(
        "bias_hh dropped (one bias, as Keras)", applies=lambda case: case.config.get("bias", True), weights=_one_bias
    ),
    Variant(
        "reverse direction's output not flipped back",
        applies=lambda case: case.config.get("bidirectional", False),
        trace=_reverse_output_unflipped,
    ),
    Variant("h_n stacked direction-major", applies=_bidirectional_deep, trace=_direction_major),
    Variant("lengths ignored (no PackedSequence)", applies=has_partial_mask, inputs=drop_mask),
)


def _states_swapped(case):
    """The initial state handed over as ``(c, h)``: Flax's order, or a port
    that unpacks ``cell(x, (h, c))``'s state the other way round."""
    state = case.initial_state
    return case.replace(h0=state["c0"], c0=state["h0"])


def _has_initial_state(case):
    return "h0" in case.initial_state


TORCH_LSTM_CELL_VARIANTS = (
    TORCH_LSTM_VARIANTS[0],  # gate order i,g,f,o
    TORCH_LSTM_VARIANTS[1],  # ONNX's i,o,f,c
    TORCH_LSTM_VARIANTS[2],  # bias_hh dropped
    Variant("initial state given as (c, h)", applies=_has_initial_state, inputs=_states_swapped),
)
