"""Layers and directions: the LSTMs of PyTorch and ONNX, built from one cell.

``torch.nn.LSTM`` (``num_layers``, ``bidirectional``) and ONNX's ``LSTM``
(``direction``) run one cell per layer and direction through the shared
runner, and stack their states as both frameworks do:

* ``h0``/``c0`` and ``final_h``/``final_c`` are ``(num_layers *
  num_directions, batch, width)``, slot ``layer * num_directions +
  direction`` (PyTorch's ``h_n``; ONNX's ``Y_h`` in layout 0);
* the output ``h`` is batch-major, ``(batch, time, num_directions *
  width)``, the directions concatenated on the last axis (PyTorch's output;
  ONNX's ``Y`` transposed to batch-major);
* the reverse direction reads each row backwards *within its own length*
  and its outputs are written back in input order (PyTorch's
  ``PackedSequence``, ONNX Runtime's ``ReverseSequence`` in
  ``onnxruntime/core/providers/cpu/rnn/uni_directional_lstm.cc``);
* a mask must be right-padded (a length per row is all either framework
  takes); past a row's length the output is zero and the state is carried,
  so the final state is the one at the row's last valid step.

Neither framework returns the per-step cell state, so these families trace
no state per step (``TRACED_STATES = ()``): a trace holds ``h``,
``final_h`` and ``final_c``.
"""

from typing import ClassVar

import numpy as np

from . import grad as G
from .errors import ConfigError
from .reference import Reference
from .runner import run_sequence
from .trace import Trace

FORWARD, REVERSE = "forward", "reverse"


def reverse_within(a, lengths):
    """``a`` (batch, time, ...) with each row's first ``lengths[b]`` steps in
    reverse order and its padding left in place (all rows whole when
    ``lengths`` is None).  Its own inverse."""
    if lengths is None:
        return a[:, ::-1]
    time = a.shape[1]
    steps = np.arange(time)[None, :]
    index = np.where(steps < lengths[:, None], lengths[:, None] - 1 - steps, steps)
    return np.take_along_axis(a, index.reshape(index.shape + (1,) * (a.ndim - 2)), axis=1)


class StackedReference(Reference):
    """A kind made of ``num_layers`` layers of one cell per direction.

    Subclasses set ``self.num_layers`` and ``self.directions`` (a tuple of
    ``"forward"``/``"reverse"``) in ``_configure``, and implement
    ``direction_params(params, layer, direction)`` (the cell's weights for
    one layer and direction, picked out of the kind's own weight names) as
    well as the cell's ``project_input``/``recurrence``.
    """

    TRACED_STATES: ClassVar[tuple] = ()
    zero_output_for_mask = True  # past a row's length: zeros, state carried
    STATE_SHAPE_DOC = "(num_layers * num_directions, batch, {width})"
    num_layers = 1
    directions = (FORWARD,)

    def direction_params(self, params, layer, direction):  # pragma: no cover - abstract
        raise NotImplementedError

    def state_shape(self, name, batch):
        return (self.num_layers * len(self.directions), batch, self.state_width(name))

    def _check_mask(self, mask):
        self._require_right_padded(mask, "a length per row is all this kind takes")

    def _layers(self, xs, state0, mask, run_direction):
        """The walk :meth:`_run` and :meth:`_grad` share: layer by layer, each
        direction through ``run_direction(layer, d, slot, seq, state)``
        (returning its fields: ``OUTPUT`` and ``final_<state>``), the reverse
        direction reading and writing through ``reverse_within``; returns
        the kind's fields."""
        lengths = None if mask is None else mask.sum(axis=1)
        layer_input = xs
        finals = {name: [] for name in self.STATE}
        for layer in range(self.num_layers):
            outputs = []
            for d, direction in enumerate(self.directions):
                slot = layer * len(self.directions) + d
                seq = layer_input if direction == FORWARD else reverse_within(layer_input, lengths)
                trace = run_direction(layer, d, slot, seq, tuple(s[slot] for s in state0))
                out = trace[self.OUTPUT]
                outputs.append(out if direction == FORWARD else reverse_within(out, lengths))
                for name in self.STATE:
                    finals[name].append(trace[f"final_{name}"])
            layer_input = outputs[0] if len(outputs) == 1 else np.concatenate(outputs, axis=-1)
        fields = {self.OUTPUT: layer_input}
        fields.update((f"final_{name}", np.stack(values)) for name, values in finals.items())
        return fields

    def _run(self, params, xs, state0, mask):
        def run_direction(layer, d, slot, seq, state):
            return run_sequence(self, self.direction_params(params, layer, d), seq, state, mask)

        return Trace(self._layers(xs, state0, mask, run_direction))

    def _grad(self, params, xs, state0, mask, upstream):
        """:meth:`_run`, differentiated (see :mod:`lstm_ref.grad`): the same
        walk forward in float64, keeping each direction's tape, then back
        from the last layer; the reverse direction reads and writes its
        gradients through ``reverse_within`` as its forward reads and writes
        its values.  ``steps`` are ``(num_layers * num_directions, batch,
        time, width)``, slot as ``h0``, each direction's steps in input
        order."""
        tapes = []

        def run_direction(layer, d, slot, seq, state):
            cell = self.grad_cell(self.direction_params(params, layer, d))
            tape, fields = G.forward(cell, seq, state, mask, self.zero_output_for_mask)
            tapes.append((layer, d, slot, cell, tape))
            return fields

        fields = self._layers(xs, state0, mask, run_direction)
        up = self._upstream(upstream, fields)
        fields, up = self._grad_output_rule(fields, up, mask)
        lengths = None if mask is None else mask.sum(axis=1)
        initial = {f"{name}0": np.zeros_like(s) for name, s in zip(self.STATE, state0)}
        batch, time = xs.shape[:2]
        widths = {"h": state0[0].shape[-1], "c": state0[1].shape[-1], "c_carried": state0[1].shape[-1]}
        steps = {name: np.zeros((len(state0[0]), batch, time, w)) for name, w in widths.items()}
        per_direction, d_out, width = {}, up.get(self.OUTPUT), self.out_units
        for layer in reversed(range(self.num_layers)):
            d_in = None
            for _, d, slot, cell, tape in (entry for entry in tapes if entry[0] == layer):
                reverse = self.directions[d] == REVERSE
                mine = None if d_out is None else d_out[..., d * width : (d + 1) * width]
                if reverse and mine is not None:
                    mine = reverse_within(mine, lengths)
                finals_up = [None if f"final_{n}" not in up else up[f"final_{n}"][slot] for n in self.STATE]
                dx, d_state0, per_direction[layer, d], st = G.backward(cell, tape, mine, None, *finals_up)
                if reverse:
                    dx = reverse_within(dx, lengths)
                    st = {k: reverse_within(v, lengths) for k, v in st.items()}
                d_in = dx if d_in is None else d_in + dx
                for name, value in zip(self.STATE, d_state0):
                    initial[f"{name}0"][slot] = value
                for name, value in st.items():
                    steps[name][slot] = value
            d_out = d_in
        weights = self.grad_stack(per_direction, xs.shape[-1], params)
        return G.GradResult(d_out, initial, weights, steps, Trace(fields))

    def grad_stack(self, per_direction, input_dim, params):
        """The kind's weight gradients from each ``(layer, direction)``'s
        :class:`~lstm_ref.grad.CellGrads`, keyed and ordered as
        ``weight_shapes``: ``grad_weights`` per direction under
        ``grad_weight_name`` (kinds that stack directions in one weight
        override)."""
        weights = {}
        for (layer, d), grads in per_direction.items():
            for name, value in self.grad_weights(grads).items():
                weights[self.grad_weight_name(name, layer, d)] = value
        return {k: weights[k] for k in self.weight_shapes(input_dim)}

    def _choice(self, key, allowed):
        value = self.options[key]
        if value not in allowed:
            raise ConfigError(f"{self.kind}: config[{key!r}] must be one of {list(allowed)}, got {value!r}")
        return value
