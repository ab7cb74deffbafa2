"""Weight converters between Keras 3, tf_keras, TF1, PyTorch and ONNX.

Every conversion goes through one portable form (:class:`Portable`): per
layer and direction, a kernel ``(inputs, 4H)`` and a recurrent kernel
``(width, 4H)`` in Keras' gate order i, f, c, o, an input bias and a
recurrent bias, optional peepholes and projection, and the semantics that
decide the numbers (activations, direction, mask convention).  What one
framework cannot express is refused with the reason, never dropped:

=================  ======================================================
layout             Keras ``kernel`` (in, 4H) i,f,c,o; TF1 ``kernel`` over
                   ``[x, h]`` (in + H, 4H) i,j,f,o; PyTorch ``weight_ih``
                   (4H, in) i,f,g,o; ONNX ``W`` (D, 4H, in) i,o,f,c
bias               one (Keras, TF1) or two (PyTorch ``bias_ih`` +
                   ``bias_hh``, ONNX ``Wb`` + ``Rb``): summed one way,
                   split as (bias, 0) the other
forget bias        TF1 adds ``forget_bias`` at run time: folded into the
                   bias one way, ``forget_bias=0`` the other
go_backwards       Keras returns the sequence in processing order; ONNX
                   ``reverse`` in input order; PyTorch has no reverse-only
                   direction (refused)
mask               a right-padded mask is ``sequence_lens`` /
                   ``sequence_length`` / a ``PackedSequence``; any other
                   mask is refused (tensorflow-onnx#2030); past a row's
                   length Keras repeats the last output and the others
                   write zeros (``zero_output_for_mask`` says which)
hard_sigmoid       Keras 2's (tf_keras, TF1 string activations) is ONNX
                   ``HardSigmoid`` with alpha 0.2, beta 0.5; Keras 3's,
                   ``relu6(x + 3) / 6``, is another function: refused
=================  ======================================================

``convert(case, kind)`` returns a :class:`Conversion`: the target's
:class:`~lstm_ref.case.Case` on the same numbers, and ``align`` to put the
source's outputs into the target's layout, so that both frameworks can be
compared step by step through the reference.

``torch.nn.LSTMCell`` is the one-layer, one-direction ``torch.nn.LSTM``
without a projection, its weights named without the layer suffix
(``weight_ih`` <-> ``weight_ih_l0``...) and its states unstacked
``(batch, H)``: the same cell (``aten/src/ATen/native/RNN.cpp``'s
``LSTMCell``), stepped by a user's loop.  A loop steps every row: a source
with a mask that masks a step is refused (an all-true mask is no mask and
is dropped, said in the notes); layers, two directions, a reverse
direction, a projection, peepholes and other activations are refused too.

Several one-layer sources make one target module (:class:`GroupConversion`):

* ``convert_bidirectional(forward, backward, kind)``: a Keras
  ``Bidirectional``'s two directions (``forward_<name>``, and
  ``backward_<name>`` with ``go_backwards=True``) as ONE ``torch.nn.LSTM(...,
  bidirectional=True)`` or ONE ``onnx.LSTM`` node with
  ``direction="bidirectional"``.  Keras flips the backward sequence back to
  input order before merging (``keras/src/layers/rnn/bidirectional.py``),
  which is where PyTorch and ONNX put their reverse direction, so
  ``merge_mode="concat"`` is the target's output as it is (forward units
  first); ``sum``/``mul``/``ave``/``None`` are not part of an LSTM module and
  are said in the notes.  A right-padded mask is lengths for both directions:
  Keras' backward layer reads the padding first, skips it (state carried)
  and writes zeros there (``Bidirectional`` forces ``zero_output_for_mask =
  return_sequences``), as a reverse direction within each row's length does.
* ``convert_layers(cases, kind)``: one-layer LSTMs where each reads the
  previous one's output (the ONNX nodes ``torch.onnx.export`` writes for an
  ``nn.LSTM(num_layers=L)``) as one ``torch.nn.LSTM(num_layers=L)``: its
  ``h`` is the last layer's, its final states the layers' stacked.
"""

from dataclasses import dataclass, field

import numpy as np

from .case import Case
from .errors import ConfigError
from .runner import is_right_padded

KERAS3, TF_KERAS = "keras.layers.LSTM", "tf_keras.layers.LSTM"
BASIC, LSTMCELL = "tf.compat.v1.nn.rnn_cell.BasicLSTMCell", "tf.compat.v1.nn.rnn_cell.LSTMCell"
TORCH, ONNX = "torch.nn.LSTM", "onnx.LSTM"
TORCH_CELL = "torch.nn.LSTMCell"
FLAX_CELL, FLAX_OPTIMIZED = "flax.nnx.LSTMCell", "flax.nnx.OptimizedLSTMCell"
FLAX = (FLAX_CELL, FLAX_OPTIMIZED)
KINDS = (KERAS3, TF_KERAS, BASIC, LSTMCELL, TORCH, ONNX, TORCH_CELL, FLAX_CELL, FLAX_OPTIMIZED)

# Gate orders, as permutations of Keras' i, f, c, o blocks.
FROM_TF1 = (0, 2, 1, 3)  # TF1 i, j, f, o -> Keras i, f, c(=j), o (its own inverse)
TO_ONNX = (0, 3, 1, 2)  # Keras i, f, c, o -> ONNX i, o, f, c
FROM_ONNX = (0, 2, 3, 1)  # ONNX i, o, f, c -> Keras i, f, c, o

# Activations every framework here spells, by Keras name.
_ONNX_NAMES = {"sigmoid": "Sigmoid", "tanh": "Tanh", "relu": "Relu"}

# Keras 2's hard_sigmoid, clip(0.2 x + 0.5, 0, 1) (tf_keras, and TF1 cells'
# string activations): ONNX's HardSigmoid with alpha 0.2, beta 0.5, the same
# function in the same op order.  Its portable name says which hard_sigmoid it
# is: Keras 3's ``hard_sigmoid`` is relu6(x + 3) / 6, another function in
# float32, and is never carried across under that name (refused).
KERAS2_HARD_SIGMOID = "keras2_hard_sigmoid"
_ONNX_PARAMETERS = {KERAS2_HARD_SIGMOID: ("HardSigmoid", 0.2, 0.5)}
_KERAS3_HARD_SIGMOID = "Keras 3's hard_sigmoid is relu6(x + 3) / 6, not Keras 2's clip(0.2 x + 0.5, 0, 1)"


def _portable_name(name, kind):
    """A Keras/TF1 activation name as the portable form spells it."""
    if name == "hard_sigmoid" and kind in (TF_KERAS, BASIC, LSTMCELL):
        return KERAS2_HARD_SIGMOID
    return name


def _portable_names(kind):
    return set(_ONNX_NAMES) | ({KERAS2_HARD_SIGMOID} if kind != KERAS3 else set())


def _keras_name(name, target):
    """A portable activation name as ``target`` (a Keras layer or TF1 cell) spells it."""
    if name == KERAS2_HARD_SIGMOID:
        _refuse(target == KERAS3, "Keras 2's hard_sigmoid", target, f"{_KERAS3_HARD_SIGMOID}: another function")
        return "hard_sigmoid"
    return name


class ConversionError(ConfigError):
    """The source uses something the target framework cannot express."""


def permute(w, perm, axis):
    """``w`` with its 4 (or 3, for peepholes) gate blocks on ``axis`` in order ``perm``."""
    blocks = np.split(np.asarray(w), len(perm), axis=axis)
    return np.concatenate([blocks[p] for p in perm], axis=axis)


@dataclass
class Portable:
    """An LSTM as every framework here can read it (see the module docstring)."""

    units: int
    blocks: list  # [layer][direction] -> dict(kernel, recurrent, bias_x, bias_h, projection, peepholes)
    directions: tuple = ("forward",)
    activation: str = "tanh"  # g and h
    recurrent_activation: str = "sigmoid"  # the gates
    output_in_processing_order: bool = False  # Keras go_backwards
    zero_output_for_mask: bool = True
    dtype: str = "float32"
    notes: list = field(default_factory=list)

    @property
    def proj(self):
        p = self.blocks[0][0].get("projection")
        return 0 if p is None else p.shape[1]


@dataclass
class Conversion:
    source: Case
    case: Case  # the target kind's case, on the same numbers
    portable: Portable  # None when source and target are the same kind (nothing converted)
    notes: list  # what differs by convention, not by number

    def align(self, outputs: dict) -> dict:
        """The source's outputs (its trace's fields, in its own layout) in the
        target's layout: states stacked or not, the sequence flipped where
        one framework returns processing order, padded steps zeroed where
        the target writes zeros."""
        src, dst = self.source, self.case
        h = np.asarray(outputs["h"])
        if _processing_order(src):
            h = h[:, ::-1]
        h = _flax_order(src, h)  # to input order
        if src.mask is not None and not _zeroes_padding(src) and _zeroes_padding(dst):
            h = np.where(np.asarray(src.mask, bool)[..., None], h, 0).astype(h.dtype)
        if _processing_order(dst):
            h = h[:, ::-1]
        h = _flax_order(dst, h)  # from input order
        if dst.kind in FLAX and src.kind not in FLAX and dst.mask is not None:
            # Past a row's length nnx.RNN keeps stepping on the padding: the
            # source defines nothing there, so the target's own reference
            # stands in (checked against the target framework by itself).
            valid = np.asarray(dst.mask, bool)[..., None]
            h = np.where(valid, h, dst.run().h).astype(h.dtype)
        out = {"h": h}
        for name in ("final_h", "final_c"):
            value = np.asarray(outputs[name])
            stacked = value if _stacked(src.kind) else value[None]
            out[name] = stacked if _stacked(dst.kind) else stacked[0]
        return out

    def pull_back(self, upstream: dict) -> dict:
        """The adjoint of :meth:`align`: a gradient on the target's outputs
        (``h``, ``final_h``, ``final_c`` in the target's layout) as the
        gradient on the source's, in its own layout: the flips undone in
        reverse order, the steps align zeroes or fills given none, the
        states unstacked.  ``sum((align(o) - align(0)) * u) == sum(o *
        pull_back(u))`` (align is affine where a Flax target's padding is
        filled with its own reference)."""
        src, dst = self.source, self.case
        out = {}
        if "h" in upstream:
            h = np.asarray(upstream["h"])
            if dst.kind in FLAX and src.kind not in FLAX and dst.mask is not None:
                # align fills the padding with the target's own reference: no gradient reaches the source there
                h = np.where(np.asarray(dst.mask, bool)[..., None], h, 0).astype(h.dtype)
            h = _flax_order(dst, h)  # each row's flip is its own adjoint
            if _processing_order(dst):
                h = h[:, ::-1]
            if src.mask is not None and not _zeroes_padding(src) and _zeroes_padding(dst):
                h = np.where(np.asarray(src.mask, bool)[..., None], h, 0).astype(h.dtype)
            h = _flax_order(src, h)
            if _processing_order(src):
                h = h[:, ::-1]
            out["h"] = np.ascontiguousarray(h)
        for name in ("final_h", "final_c"):
            if name in upstream:
                value = np.asarray(upstream[name])
                stacked = value if _stacked(dst.kind) else value[None]
                out[name] = stacked if _stacked(src.kind) else stacked[0]
        return out

    def restrict(self, upstream: dict) -> dict:
        """``upstream`` (on the target's outputs) with nothing where the
        source defines no output: past a row's length, a Flax target keeps
        stepping on the padding and :meth:`align` fills those steps with the
        target's own reference, so a gradient there reaches the target's x
        and carry but no source.  What a cross-framework gradient comparison
        must draw its upstream from."""
        dst = self.case
        if "h" not in upstream or dst.kind not in FLAX or self.source.kind in FLAX or dst.mask is None:
            return upstream
        h = np.asarray(upstream["h"])
        return {**upstream, "h": np.where(np.asarray(dst.mask, bool)[..., None], h, 0).astype(h.dtype)}

    def states_to_target(self, states: dict) -> dict:
        """``h0``/``c0``-shaped arrays of the source (a gradient on its
        initial state) in the target's layout: stacked or not."""
        return {
            k: (v if _stacked(self.source.kind) else np.asarray(v)[None])
            if _stacked(self.case.kind)
            else (np.asarray(v)[0] if _stacked(self.source.kind) else v)
            for k, v in states.items()
        }


@dataclass
class GroupConversion:
    """Several one-layer sources as one target LSTM (see the module docstring)."""

    sources: tuple  # the source cases: (forward, backward), or one per layer
    case: Case  # the target kind's case
    portable: Portable
    notes: list
    how: str  # "bidirectional" or "layers"

    @property
    def source(self):
        return self.sources[0]

    def align(self, outputs) -> dict:
        """The sources' outputs (one dict per source, in its own layout) in
        the target's layout: the two directions' sequences concatenated
        (forward first) and their states stacked, or the last layer's
        sequence and every layer's states stacked."""
        each = [part.align(out) for part, out in zip(self.parts(), outputs)]
        if self.how == "bidirectional":
            h = np.concatenate([e["h"] for e in each], axis=-1)
        else:
            h = each[-1]["h"]
        out = {"h": h}
        for name in ("final_h", "final_c"):
            out[name] = np.concatenate([e[name] for e in each], axis=0)
        return out

    def parts(self):
        """Each source's one-layer :class:`Conversion` view (what :meth:`align` aligns it by)."""
        return [Conversion(src, _one_layer_view(src, self.case), None, []) for src in self.sources]

    def pull_back(self, upstream: dict) -> list:
        """The adjoint of :meth:`align`, one upstream per source: for two
        directions, the target's upstream split (forward units first; the
        states' direction axis), each part pulled back to its source; for a
        stack of layers, the sequence's upstream to the top layer and each
        layer's slice of the stacked states to that layer.  A lower layer's
        sequence is no output of the target (:meth:`align` reads the top
        layer's), so its pull-back has no ``h``: its upstream there is the
        dL/dx of the layer above, which the caller adds (each layer's x is
        the output of the one below, as :func:`convert_layers` requires)."""
        parts = self.parts()
        if self.how == "bidirectional":
            halves = np.split(np.asarray(upstream["h"]), 2, axis=-1) if "h" in upstream else [None, None]
        else:
            halves = [None] * (len(parts) - 1) + [upstream.get("h")]
        out = []
        for k, part in enumerate(parts):
            given = {"h": halves[k]} if halves[k] is not None else {}
            for name in ("final_h", "final_c"):
                if name in upstream:
                    value = np.asarray(upstream[name])
                    share = len(value) // len(parts)  # the states each part stacks: its directions
                    given[name] = value[k * share : (k + 1) * share]
            out.append(part.pull_back(given))
        return out


def _one_layer_view(source, target):
    """A one-layer, one-direction stand-in of ``target`` for aligning one source's outputs."""
    return Case(target.kind, {}, source.x, {}, target.mask, name=target.name)


def _stacked(kind):
    return kind in (TORCH, ONNX)


def _processing_order(case):
    return case.kind in (KERAS3, TF_KERAS) and case.config.get("go_backwards", False)


def _zeroes_padding(case):
    if case.kind in (KERAS3, TF_KERAS):
        return case.config.get("zero_output_for_mask", False)
    return case.kind not in FLAX  # nnx.RNN emits what the cell computes on the padding


def _flax_order(case, h):
    """A Flax ``reverse=True, keep_order=False`` output (processing order, each
    row reversed within its length, its padding in place) in input order, or
    back: ``flip_sequences`` is its own inverse.  Other outputs as they are."""
    if case.kind not in FLAX or not case.config.get("reverse") or case.config.get("keep_order"):
        return h
    from .flax_lstm import flip_sequences

    lengths = None if case.mask is None else np.asarray(case.mask, bool).sum(axis=1)
    return flip_sequences(h, lengths)


def _refuse(cond, source, target, why):
    if cond:
        raise ConversionError(f"cannot convert {source} to {target}: {why}")


# -- to the portable form ------------------------------------------------------


def _from_keras(case):
    ref = case.reference()
    _refuse(
        getattr(ref, "zero_by_unreversed_mask", False) and case.mask is not None,
        case.kind,
        "a portable form",
        "unroll=True with go_backwards and zero_output_for_mask zeroes the outputs with the unreversed mask "
        "(TF's unrolled-loop bug, which the reference reproduces) and no other layer computes that; "
        "convert the layer with unroll=False",
    )
    names = {
        "activation": case.config.get("activation", "tanh"),
        "recurrent_activation": case.config.get("recurrent_activation", "sigmoid"),
    }
    for role, name in names.items():
        _refuse(
            name == "hard_sigmoid" and case.kind == KERAS3,
            case.kind,
            "a portable form",
            f"{role}='hard_sigmoid': {_KERAS3_HARD_SIGMOID} (ONNX's HardSigmoid(0.2, 0.5)), "
            "and no framework here computes it the same",
        )
        names[role] = _portable_name(name, case.kind)
        _refuse(
            names[role] not in _portable_names(case.kind),
            case.kind,
            "a portable form",
            f"{role}={name!r} is not spelled the same everywhere (portable: sigmoid, tanh, relu"
            + (", Keras 2's hard_sigmoid)" if case.kind == TF_KERAS else ")"),
        )
    w = case.weights
    bias = w.get("bias")
    block = {
        "kernel": w["kernel"],
        "recurrent": w["recurrent_kernel"],
        "bias_x": bias,
        "bias_h": None if bias is None else np.zeros_like(bias),
        "projection": None,
        "peepholes": None,
    }
    backwards = ref.go_backwards
    return Portable(
        ref.units,
        [[block]],
        ("reverse",) if backwards else ("forward",),
        names["activation"],
        names["recurrent_activation"],
        output_in_processing_order=backwards,
        zero_output_for_mask=ref.zero_output_for_mask,
        dtype=ref.policy.name,
    )


def _from_tf1(case):
    ref = case.reference()
    _refuse(
        getattr(ref, "cell_clip", None) is not None,
        case.kind,
        "a portable form",
        "cell_clip clips the carried cell state; ONNX's clip bounds gate inputs, and the others have none",
    )
    _refuse(getattr(ref, "proj_clip", None) is not None, case.kind, "a portable form", "proj_clip has no equivalent")
    act = _portable_name(case.config.get("activation") or "tanh", case.kind)  # resolved by tf_keras (Keras 2)
    _refuse(act not in _portable_names(case.kind), case.kind, "a portable form", f"activation={act!r}")
    w = case.weights
    inputs = w["kernel"].shape[0] - ref.out_units
    kernel = permute(w["kernel"], FROM_TF1, axis=1)
    bias = permute(w["bias"], FROM_TF1, axis=0).astype(np.float64)
    bias[ref.units : 2 * ref.units] += ref.forget_bias  # folded: TF1 adds it at run time
    peep = None
    if getattr(ref, "use_peepholes", False):
        peep = {"i": w["w_i_diag"], "f": w["w_f_diag"], "o": w["w_o_diag"]}
    block = {
        "kernel": kernel[:inputs],
        "recurrent": kernel[inputs:],
        "bias_x": bias.astype(w["bias"].dtype),
        "bias_h": np.zeros_like(w["bias"]),
        "projection": w.get("projection/kernel"),
        "peepholes": peep,
    }
    notes = [f"forget_bias={ref.forget_bias:g} folded into the f block of the bias"] if ref.forget_bias else []
    return Portable(ref.units, [[block]], ("forward",), act, "sigmoid", dtype=ref.policy.name, notes=notes)


def _from_torch_cell(case):
    """An LSTMCell is layer 0, direction 0 of ``torch.nn.LSTM``: the same blocks, named without ``_l0``."""
    ref = case.reference()
    w = case.weights
    block = {
        "kernel": np.asarray(w["weight_ih"]).T,
        "recurrent": np.asarray(w["weight_hh"]).T,
        "bias_x": w.get("bias_ih"),
        "bias_h": w.get("bias_hh"),
        "projection": None,
        "peepholes": None,
    }
    return Portable(ref.units, [[block]], ("forward",), dtype=ref.policy.name)


def _from_torch(case):
    ref = case.reference()
    layers = []
    for layer in range(ref.num_layers):
        row = []
        for d in range(len(ref.directions)):
            s = ref.suffix(layer, d)
            w = case.weights
            hr = w.get(f"weight_hr{s}")
            row.append(
                {
                    "kernel": np.asarray(w[f"weight_ih{s}"]).T,
                    "recurrent": np.asarray(w[f"weight_hh{s}"]).T,
                    "bias_x": w.get(f"bias_ih{s}"),
                    "bias_h": w.get(f"bias_hh{s}"),
                    "projection": None if hr is None else np.asarray(hr).T,
                    "peepholes": None,
                }
            )
        layers.append(row)
    return Portable(ref.units, layers, ref.directions, dtype=ref.policy.name)


def _from_flax(case):
    """Flax's gate layers side by side (OptimizedLSTMCell's layout, gates i,
    f, g, o = Keras' i, f, c, o), its one bias on the h side."""
    ref = case.reference()
    names = {"activation_fn": ref.options["activation_fn"], "gate_fn": ref.options["gate_fn"]}
    for role, name in names.items():
        _refuse(
            name not in _ONNX_NAMES,
            case.kind,
            "a portable form",
            f"{role}={name!r} is not spelled the same everywhere (portable: sigmoid, tanh, relu; Flax's "
            "hard_sigmoid is Keras 3's relu6(x + 3) / 6)",
        )
    packed = ref.pack(case.weights)
    block = {
        "kernel": np.asarray(packed["kernel"]),
        "recurrent": np.asarray(packed["recurrent_kernel"]),
        "bias_x": None,
        "bias_h": np.asarray(packed["bias"]),
        "projection": None,
        "peepholes": None,
    }
    return Portable(
        ref.units,
        [[block]],
        ("reverse",) if ref.reverse else ("forward",),
        names["activation_fn"],
        names["gate_fn"],
        output_in_processing_order=ref.reverse and not ref.keep_order,
        dtype=ref.policy.name,
    )


def _from_onnx(case):
    ref = case.reference()
    _refuse(ref.clip is not None, case.kind, "a portable form", "clip bounds gate inputs; no other framework has it")
    _refuse(ref.input_forget, case.kind, "a portable form", "input_forget couples f = 1 - i; no other framework has it")
    names = case.config.get("activations")
    if names is not None:
        f, g, h = names[:3]
        _refuse(
            g != h or any(list(names[3 * d : 3 * d + 3]) != [f, g, h] for d in range(len(ref.directions))),
            case.kind,
            "a portable form",
            "activations must be one f and one g = h for every direction",
        )
        by_onnx = {v: k for k, v in _ONNX_NAMES.items()} | {v[0]: k for k, v in _ONNX_PARAMETERS.items()}
        _refuse(
            f not in by_onnx or g not in by_onnx,
            case.kind,
            "a portable form",
            f"activations {names} (portable: {sorted(by_onnx)})",
        )
        rec, act = by_onnx[f], by_onnx[g]
        # HardSigmoid is Keras 2's hard_sigmoid only with alpha 0.2 and beta 0.5 (its defaults), as float32
        takes = [_ONNX_PARAMETERS[by_onnx[n]] for n in names if by_onnx.get(n) in _ONNX_PARAMETERS]
        for key, k in (("activation_alpha", 1), ("activation_beta", 2)):
            values = case.config.get(key)
            _refuse(
                values is not None
                and (
                    len(values) != len(takes)
                    or any(np.float32(v) != np.float32(t[k]) for v, t in zip(values, takes, strict=False))
                ),
                case.kind,
                "a portable form",
                f"{key}={values}: only HardSigmoid(alpha 0.2, beta 0.5), Keras 2's hard_sigmoid, is portable",
            )
    else:
        rec, act = "sigmoid", "tanh"
    w = case.weights
    units = ref.units
    row = []
    for d in range(len(ref.directions)):
        b = None if "B" not in w else np.asarray(w["B"][d])
        p = None if "P" not in w else np.split(np.asarray(w["P"][d]), 3)  # i, o, f
        row.append(
            {
                "kernel": permute(np.asarray(w["W"][d]).T, FROM_ONNX, axis=1),
                "recurrent": permute(np.asarray(w["R"][d]).T, FROM_ONNX, axis=1),
                "bias_x": None if b is None else permute(b[: 4 * units], FROM_ONNX, 0),
                "bias_h": None if b is None else permute(b[4 * units :], FROM_ONNX, 0),
                "projection": None,
                "peepholes": None if p is None else {"i": p[0], "o": p[1], "f": p[2]},
            }
        )
    return Portable(units, [row], ref.directions, act, rec, dtype=ref.policy.name)


# -- from the portable form ------------------------------------------------------


def _one_bias(block, target):
    bx, bh = block["bias_x"], block["bias_h"]
    if bx is None and bh is None:
        return None
    if bx is None or bh is None:
        return bx if bh is None else bh
    return (np.asarray(bx, np.float64) + np.asarray(bh, np.float64)).astype(np.asarray(bx).dtype)


def _single(p, target):
    _refuse(len(p.blocks) != 1, "a stacked LSTM", target, f"{len(p.blocks)} layers; convert each layer")
    _refuse(len(p.directions) != 1, "a bidirectional LSTM", target, "two directions; convert each direction")
    return p.blocks[0][0]


def _no_peepholes(block, target):
    peep = block["peepholes"]
    _refuse(
        peep is not None and any(np.any(np.asarray(v) != 0) for v in peep.values()),
        "peepholes",
        target,
        f"{target} has none",
    )


def _to_keras(p, target, config):
    block = _single(p, target)
    _no_peepholes(block, target)
    _refuse(block["projection"] is not None, "a projection", target, f"{target} has none")
    bias = _one_bias(block, target)
    out = {
        "units": p.units,
        "activation": _keras_name(p.activation, target),
        "recurrent_activation": _keras_name(p.recurrent_activation, target),
        "use_bias": bias is not None,
        "go_backwards": p.directions == ("reverse",),
        "zero_output_for_mask": p.zero_output_for_mask,
        "dtype": p.dtype,
    }
    weights = {"kernel": block["kernel"], "recurrent_kernel": block["recurrent"]}
    if bias is not None:
        weights["bias"] = bias
    return {**out, **config}, weights


def _to_tf1(p, target, config):
    block = _single(p, target)
    _refuse(
        p.directions != ("forward",),
        "a reverse LSTM",
        target,
        "a TF1 cell runs forward (reverse the inputs with tf.reverse_sequence yourself)",
    )
    _refuse(
        p.recurrent_activation != "sigmoid",
        f"recurrent_activation={p.recurrent_activation!r}",
        target,
        "TF1 cells use sigmoid for the gates",
    )
    bias = _one_bias(block, target)
    if bias is None:
        bias = np.zeros(4 * p.units, block["kernel"].dtype)
    weights = {
        "kernel": permute(np.concatenate([block["kernel"], block["recurrent"]]), FROM_TF1, axis=1),
        "bias": permute(bias, FROM_TF1, axis=0),
    }
    out = {"num_units": p.units, "forget_bias": 0.0, "activation": _keras_name(p.activation, target), "dtype": p.dtype}
    if target == BASIC:
        _no_peepholes(block, target)
        _refuse(block["projection"] is not None, "a projection", target, "BasicLSTMCell has none (use LSTMCell)")
    else:
        if block["peepholes"] is not None:
            out["use_peepholes"] = True
            weights.update(
                w_i_diag=block["peepholes"]["i"], w_f_diag=block["peepholes"]["f"], w_o_diag=block["peepholes"]["o"]
            )
        if block["projection"] is not None:
            out["num_proj"] = block["projection"].shape[1]
            weights["projection/kernel"] = block["projection"]
    return {**out, **config}, weights


def _to_torch(p, target, config):
    _refuse(
        p.directions == ("reverse",),
        "a reverse-only LSTM",
        target,
        "torch.nn.LSTM has no reverse-only direction (flip the input and the output yourself)",
    )
    _refuse(
        (p.activation, p.recurrent_activation) != ("tanh", "sigmoid"),
        f"activations ({p.activation}, {p.recurrent_activation})",
        target,
        "torch.nn.LSTM uses sigmoid and tanh only",
    )
    weights = {}
    for layer, row in enumerate(p.blocks):
        for d, block in enumerate(row):
            _no_peepholes(block, target)
            s = f"_l{layer}" + ("_reverse" if d else "")
            weights[f"weight_ih{s}"] = np.ascontiguousarray(block["kernel"].T)
            weights[f"weight_hh{s}"] = np.ascontiguousarray(block["recurrent"].T)
            if block["bias_x"] is not None or block["bias_h"] is not None:
                zero = np.zeros(4 * p.units, block["kernel"].dtype)
                weights[f"bias_ih{s}"] = zero if block["bias_x"] is None else block["bias_x"]
                weights[f"bias_hh{s}"] = zero if block["bias_h"] is None else block["bias_h"]
            if block["projection"] is not None:
                weights[f"weight_hr{s}"] = np.ascontiguousarray(block["projection"].T)
    first = p.blocks[0][0]
    out = {
        "input_size": first["kernel"].shape[0],
        "hidden_size": p.units,
        "num_layers": len(p.blocks),
        "bias": any(k.startswith("bias") for k in weights),
        "bidirectional": len(p.directions) == 2,
        "proj_size": p.proj,
        "dtype": p.dtype,
    }
    return {**out, **config}, weights


def _to_torch_cell(p, target, config):
    """The one-layer ``torch.nn.LSTM`` without a projection, renamed: ``weight_ih_l0`` -> ``weight_ih``..."""
    _refuse(len(p.blocks) != 1, "a stacked LSTM", target, f"{len(p.blocks)} layers; an LSTMCell is one layer")
    _refuse(len(p.directions) != 1, "a bidirectional LSTM", target, "two directions; an LSTMCell runs one, forward")
    _refuse(
        p.directions == ("reverse",),
        "a reverse-only LSTM",
        target,
        "an LSTMCell is stepped forward by its loop (flip the input and the output yourself)",
    )
    _refuse(p.proj, "a projection", target, "torch.nn.LSTMCell has none (torch.nn.LSTM's proj_size)")
    _refuse(
        (p.activation, p.recurrent_activation) != ("tanh", "sigmoid"),
        f"activations ({p.activation}, {p.recurrent_activation})",
        target,
        "torch.nn.LSTMCell uses sigmoid and tanh only",
    )
    new_config, weights = _to_torch(p, target, {})
    config = {
        "input_size": new_config["input_size"],
        "hidden_size": new_config["hidden_size"],
        "bias": new_config["bias"],
        "dtype": new_config["dtype"],
        **config,
    }
    return config, {k[: -len("_l0")]: v for k, v in weights.items()}


def _to_flax(p, target, config):
    """One bias, on the h side: the input side's folded in (Flax's input
    Linear layers have none); ``reverse`` for a reverse direction, with
    ``keep_order=True``: its outputs in input order, as PyTorch's and
    ONNX's (``align`` maps Keras' processing order)."""
    from .flax_lstm import FlaxLSTMCell, FlaxOptimizedLSTMCell

    block = _single(p, target)
    _no_peepholes(block, target)
    _refuse(block["projection"] is not None, "a projection", target, f"{target} has none")
    for role, name in (("gate_fn", p.recurrent_activation), ("activation_fn", p.activation)):
        _refuse(
            name not in _ONNX_NAMES,
            f"{role} {name!r}",
            target,
            "Flax's hard_sigmoid is relu6(x + 3) / 6, not Keras 2's clip(0.2 x + 0.5, 0, 1)"
            if name == KERAS2_HARD_SIGMOID
            else "portable: sigmoid, tanh, relu",
        )
    bias = _one_bias(block, target)
    if bias is None:
        bias = np.zeros(4 * p.units, block["kernel"].dtype)
    elif block["bias_x"] is not None and np.any(np.asarray(block["bias_x"]) != 0):
        p.notes.append("the input-side bias folded into the h-side bias (Flax's input layers have none)")
    cls = FlaxLSTMCell if target == FLAX_CELL else FlaxOptimizedLSTMCell
    weights = cls.unpack(block["kernel"], block["recurrent"], bias)
    reverse = p.directions == ("reverse",)
    out = {
        "in_features": int(block["kernel"].shape[0]),
        "hidden_features": p.units,
        "gate_fn": p.recurrent_activation,
        "activation_fn": p.activation,
        "reverse": reverse,
        "keep_order": reverse,
        "param_dtype": p.dtype,
    }
    return {**out, **config}, weights


def _to_onnx(p, target, config):
    _refuse(len(p.blocks) != 1, "a stacked LSTM", target, "one ONNX LSTM node is one layer; convert each layer")
    _refuse(p.proj, "a projection", target, "ONNX's LSTM has none")
    units = p.units
    W, R, B, P = [], [], [], []
    for block in p.blocks[0]:
        W.append(permute(block["kernel"], TO_ONNX, axis=1).T)
        R.append(permute(block["recurrent"], TO_ONNX, axis=1).T)
        zero = np.zeros(4 * units, block["kernel"].dtype)
        bx = zero if block["bias_x"] is None else block["bias_x"]
        bh = zero if block["bias_h"] is None else block["bias_h"]
        B.append(np.concatenate([permute(bx, TO_ONNX, 0), permute(bh, TO_ONNX, 0)]))
        peep = block["peepholes"]
        P.append(None if peep is None else np.concatenate([peep["i"], peep["o"], peep["f"]]))
    weights = {"W": np.stack(W), "R": np.stack(R)}
    if any(b["bias_x"] is not None or b["bias_h"] is not None for b in p.blocks[0]):
        weights["B"] = np.stack(B)
    if any(x is not None for x in P):
        weights["P"] = np.stack([np.zeros(3 * units, W[0].dtype) if x is None else x for x in P])
    direction = "bidirectional" if len(p.directions) == 2 else p.directions[0]
    out = {"hidden_size": units, "direction": direction}
    if (p.activation, p.recurrent_activation) != ("tanh", "sigmoid"):
        fgh = [p.recurrent_activation, p.activation, p.activation] * len(p.directions)
        out["activations"] = [_ONNX_PARAMETERS[n][0] if n in _ONNX_PARAMETERS else _ONNX_NAMES[n] for n in fgh]
        if any(n in _ONNX_PARAMETERS for n in fgh):  # in order, one per function that takes them
            out["activation_alpha"] = [_ONNX_PARAMETERS[n][1] for n in fgh if n in _ONNX_PARAMETERS]
            out["activation_beta"] = [_ONNX_PARAMETERS[n][2] for n in fgh if n in _ONNX_PARAMETERS]
            p.notes.append("Keras 2's hard_sigmoid written as HardSigmoid(alpha=0.2, beta=0.5), the same function")
    if p.dtype != "float32":
        out["dtype"] = p.dtype
    return {**out, **config}, weights


_FROM = {
    KERAS3: _from_keras,
    TF_KERAS: _from_keras,
    BASIC: _from_tf1,
    LSTMCELL: _from_tf1,
    TORCH: _from_torch,
    ONNX: _from_onnx,
    TORCH_CELL: _from_torch_cell,
    FLAX_CELL: _from_flax,
    FLAX_OPTIMIZED: _from_flax,
}
_TO = {
    KERAS3: _to_keras,
    TF_KERAS: _to_keras,
    BASIC: _to_tf1,
    LSTMCELL: _to_tf1,
    TORCH: _to_torch,
    ONNX: _to_onnx,
    TORCH_CELL: _to_torch_cell,
    FLAX_CELL: _to_flax,
    FLAX_OPTIMIZED: _to_flax,
}


def to_portable(case) -> Portable:
    try:
        return _FROM[case.kind](case)
    except KeyError:
        raise ConversionError(f"no converter from {case.kind!r}; converters exist for {list(KINDS)}") from None


def _state(case, name, target):
    value = case.initial_state.get(f"{name}0")
    if value is None:
        return None
    stacked = value if _stacked(case.kind) else np.asarray(value)[None]
    return stacked if _stacked(target) else stacked[0]


def _mask(case, target):
    if case.mask is not None and (case.kind in FLAX) != (target in FLAX):
        empty = np.flatnonzero(~np.asarray(case.mask, bool).any(axis=1))
        if empty.size:
            raise ConversionError(
                f"cannot convert {case.kind} to {target}: mask row(s) {empty.tolist()} have length 0, and for "
                "such a row nnx.RNN returns the carry after the last (padding) step (seq_lengths - 1 = -1 "
                "wraps), where the others return the initial state (or zeros)"
            )
    if case.mask is None or target in (KERAS3, TF_KERAS):
        return case.mask
    mask = np.asarray(case.mask, bool)
    if target == TORCH_CELL:
        _refuse(
            not mask.all(),
            case.kind,
            target,
            "the mask masks steps, and an LSTMCell has none: its loop steps every row it is given "
            "(give it each row's valid steps only)",
        )
        return None  # every step valid: no mask
    bad = np.flatnonzero(~is_right_padded(mask))
    if bad.size:
        raise ConversionError(
            f"cannot convert {case.kind} to {target}: mask row(s) {bad.tolist()} are not "
            "right-padded, and a length per row (sequence_lens, sequence_length, a "
            "PackedSequence) expresses right padding only (tensorflow-onnx#2030)"
        )
    empty = np.flatnonzero(~mask.any(axis=1))
    if empty.size and target == TORCH:
        raise ConversionError(
            f"cannot convert {case.kind} to {target}: mask row(s) {empty.tolist()} have length 0, "
            "which pack_padded_sequence refuses"
        )
    if empty.size and target == ONNX and case.initial_state:
        raise ConversionError(
            f"cannot convert {case.kind} to {target}: mask row(s) {empty.tolist()} have length 0 "
            "and an initial state is given: ONNX Runtime ends such a row with zeros, "
            f"{case.kind} with its initial state"
        )
    return mask


def _group_case(sources, portable, target, x, mask, notes, name):
    new_config, weights = _TO[target](portable, target, {})
    states = {}
    for s in ("h", "c"):
        given = [_state(c, s, target) for c in sources]
        if any(v is not None for v in given):
            if any(v is None for v in given):
                raise ConversionError(
                    f"cannot convert {name} to {target}: an initial {s} is given to some of its "
                    "LSTMs and not to the others"
                )
            states[f"{s}0"] = np.concatenate([np.asarray(v) for v in given], axis=0)
    case = Case(
        target,
        new_config,
        x,
        weights,
        mask,
        name=f"{name} as {target}",
        notes="; ".join(notes),
        platform=sources[0].platform,
        **states,
    )
    try:
        case.reference()
    except ConfigError as exc:
        raise ConversionError(f"cannot convert {name} to {target}: {exc}") from None
    return case


def _same_semantics(parts, target, name):
    first = parts[0]
    for p in parts[1:]:
        _refuse(
            (p.units, p.activation, p.recurrent_activation, p.dtype)
            != (first.units, first.activation, first.recurrent_activation, first.dtype),
            name,
            target,
            "its LSTMs differ in units, activations or dtype, which one module shares",
        )
        _refuse(p.proj != first.proj, name, target, "its LSTMs differ in projection size")


MERGES = {"sum": "add", "mul": "multiply", "ave": "average"}


def convert_bidirectional(forward, backward, target: str, merge_mode="concat", name="Bidirectional") -> GroupConversion:
    """A Keras ``Bidirectional``'s directions (their cases, on the same x
    and mask) as one bidirectional ``target`` LSTM; see the module docstring."""
    _refuse(target not in (TORCH, ONNX), name, target, "only torch.nn.LSTM and onnx.LSTM have two directions")
    parts = [to_portable(forward), to_portable(backward)]
    _refuse(
        [p.directions for p in parts] != [("forward",), ("reverse",)],
        name,
        target,
        "its forward layer must run forward and its backward layer backwards (go_backwards)",
    )
    _same_semantics(parts, target, name)
    _refuse(
        np.shape(forward.x) != np.shape(backward.x)
        or not np.array_equal(forward.x, backward.x)
        or (forward.mask is None) != (backward.mask is None)
        or (forward.mask is not None and not np.array_equal(forward.mask, backward.mask)),
        name,
        target,
        "its two directions did not read the same input and mask",
    )
    first = parts[0]
    portable = Portable(
        first.units,
        [[parts[0].blocks[0][0], parts[1].blocks[0][0]]],
        ("forward", "reverse"),
        first.activation,
        first.recurrent_activation,
        dtype=first.dtype,
        notes=parts[0].notes + parts[1].notes,
    )
    mask = _mask(forward, target)
    notes = list(portable.notes)
    units = first.units
    what = "torch.nn.LSTM(bidirectional=True)" if target == TORCH else "the bidirectional ONNX LSTM"
    if merge_mode in MERGES:
        notes.append(
            f"merge_mode={merge_mode!r} is not part of {what}, which returns both directions concatenated "
            f"(forward [..., :{units}], backward [..., {units}:]): {MERGES[merge_mode]} the two halves"
        )
    elif merge_mode is None:
        notes.append(
            f"merge_mode=None: the Bidirectional returns two outputs; {what} returns them concatenated "
            f"(forward [..., :{units}], backward [..., {units}:])"
        )
    if not forward.config.get("return_sequences", False):
        notes.append(
            "return_sequences=False: the Bidirectional's output is the merge of the forward direction's "
            "last output and the backward direction's first (final_h[0] and final_h[1])"
        )
    if any(c.mask is not None and not _zeroes_padding(c) for c in (forward, backward)):
        notes.append(
            f"past a row's length {forward.kind} repeats the last output; {target} writes zeros (compared as zeros)"
        )
    case = _group_case((forward, backward), portable, target, forward.x, mask, notes, name)
    return GroupConversion((forward, backward), case, portable, notes, "bidirectional")


def convert_layers(cases, target: str, name="a stack") -> GroupConversion:
    """One-layer LSTMs, each reading the one before's output, as one
    ``target`` LSTM of ``len(cases)`` layers (``torch.nn.LSTM`` only: one
    ONNX node is one layer)."""
    _refuse(target != TORCH, name, target, "one ONNX LSTM node is one layer; only torch.nn.LSTM stacks layers")
    parts = [to_portable(c) for c in cases]
    _same_semantics(parts, target, name)
    _refuse(len({p.directions for p in parts}) != 1, name, target, "its layers differ in direction")
    for k in range(1, len(parts)):
        width = parts[k].blocks[0][0]["kernel"].shape[0]
        out_width = (parts[k - 1].proj or parts[k - 1].units) * len(parts[k - 1].directions)
        _refuse(width != out_width, name, target, f"layer {k} reads {width} features, layer {k - 1} writes {out_width}")
    first = parts[0]
    portable = Portable(
        first.units,
        [p.blocks[0] for p in parts],
        first.directions,
        first.activation,
        first.recurrent_activation,
        dtype=first.dtype,
        notes=[n for p in parts for n in p.notes],
    )
    mask = _mask(cases[0], target)
    _refuse(
        any(
            (c.mask is None) != (cases[0].mask is None)
            or c.mask is not None
            and not np.array_equal(c.mask, cases[0].mask)
            for c in cases
        ),
        name,
        target,
        "its layers ran with different masks; a PackedSequence gives every layer the same lengths",
    )
    notes = list(portable.notes)
    case = _group_case(tuple(cases), portable, target, cases[0].x, mask, notes, name)
    return GroupConversion(tuple(cases), case, portable, notes, "layers")


def convert(case, target: str, **config) -> Conversion:
    """The same LSTM as ``target`` kind, on the same numbers (``config``:
    extra target kwargs, e.g. ``layout=1``)."""
    if target not in _TO:
        raise ConversionError(f"no converter to {target!r}; converters exist for {list(KINDS)}")
    if target == case.kind and not config:  # the same kind: nothing to convert, every option carries over
        return Conversion(case, case.replace(name=f"{case.name or case.kind} as itself"), None, [])
    portable = to_portable(case)  # non-Keras sources zero past a length: zero_output_for_mask=True
    new_config, weights = _TO[target](portable, target, dict(config))
    mask = _mask(case, target)
    if case.mask is not None and mask is None:
        portable.notes.append(f"the mask is all true (every step valid), and {target} takes none: dropped")
    # Keras' go_backwards reverses the padded sequence whole, ONNX's reverse
    # each row within its length: the final states agree, and align() maps
    # the outputs (Keras outputs zeros on the padding it reads first).
    states = {f"{s}0": _state(case, s, target) for s in ("h", "c")}
    notes = list(portable.notes)
    if case.mask is not None and case.kind in FLAX and target not in FLAX:
        notes.append(
            f"past a row's length {case.kind} keeps stepping on the padding; {target} writes zeros (compared as zeros)"
        )
    elif case.mask is not None and target in FLAX and case.kind not in FLAX:
        notes.append(f"past a row's length {target} keeps stepping on the padding (compared with its reference)")
    elif case.mask is not None and not _zeroes_padding(case) and target not in (KERAS3, TF_KERAS):
        notes.append(
            f"past a row's length {case.kind} repeats the last output; {target} writes zeros (compared as zeros)"
        )
    target_case = Case(
        target,
        new_config,
        case.x,
        weights,
        mask,
        name=f"{case.name or case.kind} as {target}",
        notes="; ".join(notes),
        platform=case.platform,
        **states,
    )
    try:
        target_case.reference()  # validate now: a bad conversion fails here, not in a worker
    except ConfigError as exc:  # e.g. a float16 source for a float32/float64-only target
        raise ConversionError(f"cannot convert {case.kind} to {target}: {exc}") from None
    return Conversion(case, target_case, portable, notes)
