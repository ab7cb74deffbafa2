"""Weights-only Keras 2 files (``model.save_weights("w.h5")``, Keras 2.0 to
2.15 and tf_keras): every LSTM in them, found by its weights, checked alone
under the semantics the file implies (``lstm-ref check WEIGHTS.h5``).

Such a file holds no model config: users rebuild the model in code and call
``load_weights``.  What is read, and every assumption made, with where it
comes from (``tf_keras/src/saving/legacy/hdf5_format.py``, tf_keras 2.21,
unless said):

  * the layout is ``save_weights_to_hdf5_group``'s: the root's
    ``layer_names`` attribute lists the layers, each layer's group has a
    ``weight_names`` attribute naming its datasets (relative to the group;
    ``load_attributes_from_hdf5_group`` also reads attributes chunked as
    ``layer_names0``, ``layer_names1``...), and the root has ``keras_version``
    and ``backend``.  Weight names end in ``kernel:0``, ``recurrent_kernel:0``
    and ``bias:0`` under a prefix: ``<layer>/lstm_cell/`` (tf_keras 2.21),
    ``<layer>/`` (Keras 2.0-2.3), ``<bi>/forward_<lstm>/[lstm_cell/]`` in a
    ``Bidirectional``;
  * an LSTM is a prefix holding exactly ``kernel`` ``(in, 4u)``,
    ``recurrent_kernel`` ``(u, 4u)`` and, unless ``use_bias=False``, ``bias``
    ``(4u,)`` -- gate order i, f, c, o (``tf_keras/src/layers/rnn/lstm.py``).
    A ``bias`` of ``(8u,)`` is a ``CuDNNLSTM`` (``tf_keras/src/layers/rnn/
    cudnn_lstm.py``: cuDNN's input and recurrent biases, sigmoid and tanh
    built in).  Anything else with a ``recurrent_kernel`` (a GRU's ``(u,
    3u)``, a SimpleRNN's ``(u, u)``, extra weights such as peepholes) and any
    layer with weights but no LSTM is listed as skipped, with its weights'
    names and shapes: nothing is dropped silently;
  * a ``CuDNNLSTM``'s weights are converted as Keras' own loader converts
    them into an ``LSTM`` (``_convert_rnn_weights``, keras PR #8307): per gate,
    the input kernel is re-laid ``k.T.reshape(k.shape, order="F")`` (cuDNN
    reads each ``(in, u)`` block's memory as a row-major ``(u, in)`` matrix:
    ``cudnn_lstm.py`` passes the blocks to ``canonical_to_params`` without
    ``transpose_weights``), the recurrent kernel is transposed per gate, and
    the two biases are summed.  keras#9463 shows what a conversion that
    skips the kernels costs, silently.  The CuDNNLSTM layer itself needs a
    GPU and is not run here: its semantics are taken to be the loader's
    (checked against ``load_weights`` by ``parity_tests/test_keras_weights.py``);
  * ``recurrent_activation`` comes from the ``keras_version`` attribute:
    ``hard_sigmoid`` before Keras 2.3.0, ``sigmoid`` from 2.3.0 on (Keras 2.3.0
    release notes, "Change default recurrent activation to sigmoid (from
    hard_sigmoid) in all RNN layers"; tensorflow#47495).  ``tf.keras`` wrote
    its own versions with a ``-tf`` suffix: ``2.2.4-tf`` was written both by
    TF 1.13-1.15, whose ``tf.keras.layers.LSTM`` defaults to ``hard_sigmoid``,
    and by TF 2.0-2.1, whose LSTM (``recurrent_v2.py``) defaults to
    ``sigmoid`` -- from release history, not verifiable with tf_keras 2.21:
    that version, and a file without ``keras_version`` (which tf_keras'
    loader reads as Keras 1), leave it unknown, and the layer is skipped
    unless ``--config`` names it.  A CuDNNLSTM is ``sigmoid`` whatever the
    version;
  * ``Bidirectional``: a prefix component ``forward_*`` is the forward layer,
    ``backward_*`` the backward one, built by tf_keras' ``Bidirectional`` with
    ``go_backwards`` flipped (``tf_keras/src/layers/rnn/bidirectional.py``):
    ``go_backwards=True`` is assumed for it, False for every other LSTM (it
    is not stored).  Each direction is checked alone; the merged output is
    not (``merge_mode`` is not stored either);
  * ``activation`` is ``tanh`` (every Keras 2 default), ``dtype`` the
    weights' dtype; ``implementation``, ``unroll`` and the like are left at
    tf_keras' defaults (1 and 2 differ by an ulp at most:
    ``lstm_ref/tf_keras_lstm.py``).  ``--config NAME='{...}'`` overrides any
    of these per layer (NAME: a row, or a file layer for all its rows; a bare
    ``'{...}'``: every LSTM of the file); an override that contradicts the
    weights (``units``, ``use_bias``, a CuDNNLSTM's activations) or another
    override is refused.

Each LSTM then runs alone on drawn x (``--batch`` x ``--time`` x in, seeded,
no mask, zero initial state) through the ``tf_keras.layers.LSTM`` record's
oracle (tf_keras, Keras 2's ``hard_sigmoid``) and the reference, compared
as every check compares (:func:`lstm_ref.harness.check.compare_layer`).
Each row carries the assumed config and where each value came from.
"""

import json
import re
from dataclasses import dataclass, field

import numpy as np

from ..case import Case
from ..errors import InputError, LstmRefError
from ..platform import chosen
from .check import compare_layer

KIND = "tf_keras.layers.LSTM"
FORMAT = "keras_weights"  # model_format's name for these files: no worker opens them whole

# where a value of the assumed config came from (the JSON's "from")
FILE, VERSION, USER, KERAS = "file", "version default", "user", "keras default"


@dataclass
class FoundLSTM:
    """One LSTM found in a weights file, its weights in
    ``tf_keras.layers.LSTM``'s layout (a CuDNNLSTM's converted)."""

    name: str  # the row: the file's layer, or layer/prefix where it holds several
    layer: str  # the file's layer (a ``layer_names`` entry)
    weights: dict
    stored: dict  # {"kernel": "lstm_1/lstm_cell/kernel:0 (3, 16)", ...}: as the file has them
    units: int
    input_dim: int
    cudnn: bool = False
    direction: str = ""  # "forward" / "backward" inside a Bidirectional
    dtype: str = "float32"
    config: dict = field(default_factory=dict)
    origin: dict = field(default_factory=dict)  # {key: {"from": ..., "why": ...}}

    @property
    def source(self):
        what = "CuDNNLSTM" if self.cudnn else "LSTM"
        if self.direction:
            return f"weights: Bidirectional({what}) {self.direction}"
        return f"weights: {what}"


@dataclass
class WeightsFile:
    path: str
    keras_version: str  # None: no keras_version attribute
    backend: str
    lstms: list
    skipped: list  # (name, why)

    def describe(self):
        version = f"Keras {self.keras_version}" if self.keras_version else "Keras (no keras_version attribute)"
        return f"{version} weights-only HDF5 (save_weights)"


def _text(value):
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def _attribute_list(group, name):
    """``load_attributes_from_hdf5_group``: ``name``, or its chunks ``name0``, ``name1``..."""
    if name in group.attrs:
        return [_text(v) for v in group.attrs[name]]
    out, k = [], 0
    while f"{name}{k}" in group.attrs:
        out += [_text(v) for v in group.attrs[f"{name}{k}"]]
        k += 1
    return out


def probe(path):
    """What an HDF5 file without ``model_config`` is, without raising:
    ``"keras2"`` (``layer_names`` at its root: Keras 2 ``save_weights``),
    ``"keras3"`` (a Keras 3 ``.weights.h5``: ``layers``/``vars`` groups, no
    attributes), or None."""
    try:
        import h5py

        with h5py.File(path, "r") as f:
            if "model_config" in f.attrs:
                return None
            if "layer_names" in f.attrs or "layer_names0" in f.attrs:
                return "keras2"
            if "layers" in f and "vars" in f:
                return "keras3"
    except Exception:  # noqa: BLE001 - a probe: not an HDF5 file, unreadable...
        return None
    return None


def _role(name):
    """``(prefix, role)`` of a weight name: its folder, and its last part
    without ``:0`` (``kernel``, ``recurrent_kernel``, ``bias``, or another)."""
    prefix, _, base = name.rpartition("/")
    return prefix, re.sub(r":\d+$", "", base)


def _shapes(items):
    return ", ".join(f"{name} {tuple(value.shape)}" for name, value in items)


def read(path) -> WeightsFile:
    """Every LSTM in the weights-only file at ``path`` (module docstring),
    and every weight-bearing layer that is not one, with the reason."""
    import h5py

    path = str(path)
    try:
        with h5py.File(path, "r") as f:
            layer_names = _attribute_list(f, "layer_names")
            if not layer_names:
                raise InputError(f"{path}: an HDF5 file with no layer_names attribute: not a Keras 2 save_weights file")
            version = _text(f.attrs["keras_version"]) if "keras_version" in f.attrs else None
            backend = _text(f.attrs["backend"]) if "backend" in f.attrs else None
            layers = []
            for layer in layer_names:
                if layer not in f:
                    raise InputError(f"{path}: layer {layer!r} is in layer_names but has no group in the file")
                group = f[layer]
                names = _attribute_list(group, "weight_names")
                values = []
                for name in names:
                    if name not in group:
                        raise InputError(f"{path}: weight {layer}/{name} is in weight_names but not in the file")
                    values.append((name, np.asarray(group[name])))
                layers.append((layer, values))
    except OSError as exc:
        raise InputError(f"{path} is not a readable HDF5 file ({str(exc).splitlines()[0]})") from None
    lstms, skipped = [], []
    for layer, values in layers:
        if values:
            found, why = _layer_lstms(layer, values)
            lstms += found
            skipped += why
    return WeightsFile(path, version, backend, lstms, skipped)


def _layer_lstms(layer, values):
    """The LSTMs among one layer's weights, and (name, why) for the rest."""
    prefixes = {}
    for name, value in values:
        prefix, role = _role(name)
        prefixes.setdefault(prefix, []).append((role, name, value))
    found, skipped, leftover = [], [], []
    for prefix, items in prefixes.items():
        roles = {role: (name, value) for role, name, value in items}
        if "recurrent_kernel" not in roles:
            leftover += [(name, value) for _, name, value in items]
            continue
        lstm, why = _lstm(layer, prefix, roles, items)
        if lstm is None:
            skipped.append((f"{layer}/{prefix}" if prefix and not prefix.startswith(layer) else prefix or layer, why))
        else:
            found.append(lstm)
    if leftover:
        shapes = _shapes(leftover)
        if found or skipped:
            skipped.append((f"{layer} (other weights)", f"not an LSTM: {shapes}: no recurrent_kernel beside them"))
        else:
            lstm_like = any(v.ndim == 2 and v.shape[1] % 4 == 0 for _, v in leftover)
            skipped.append(
                (
                    layer,
                    f"not an LSTM: {shapes}: no recurrent_kernel"
                    + (" (a (in, 4u) kernel alone is a Dense's or a Conv's, not an LSTM's)" if lstm_like else ""),
                )
            )
    _name_rows(layer, found)
    return found, skipped


def _lstm(layer, prefix, roles, items):
    """A :class:`FoundLSTM` from one prefix's weights, or (None, why not)."""
    shapes = _shapes([(name, value) for _, name, value in items])
    if set(roles) - {"kernel", "recurrent_kernel", "bias"} or len(roles) != len(items):
        return None, f"not a plain LSTM: {shapes}: weights besides kernel, recurrent_kernel and bias"
    recurrent = roles["recurrent_kernel"][1]
    if "kernel" not in roles:
        return None, f"not an LSTM: {shapes}: a recurrent_kernel without a kernel"
    kernel = roles["kernel"][1]
    if recurrent.ndim != 2 or kernel.ndim != 2:
        return None, f"not an LSTM: {shapes}: an LSTM's kernels are 2-D (a ConvLSTM's are not)"
    units, width = recurrent.shape
    if width != 4 * units:
        gates = {3 * units: "a GRU's (u, 3u)", units: "a SimpleRNN's (u, u)"}.get(width, f"(u, {width})")
        return None, f"not an LSTM: {shapes}: recurrent_kernel is {gates}, an LSTM's is (u, 4u)"
    if kernel.shape[1] != width:
        return None, f"not an LSTM: {shapes}: kernel has {kernel.shape[1]} columns, recurrent_kernel {width}"
    weights = {"kernel": kernel, "recurrent_kernel": recurrent}
    cudnn = False
    if "bias" in roles:
        bias = roles["bias"][1]
        if bias.shape == (8 * units,):
            cudnn = True
        elif bias.shape != (4 * units,):
            return None, (
                f"not an LSTM: {shapes}: bias {tuple(bias.shape)} is neither an LSTM's (4u,) = "
                f"({4 * units},) nor a CuDNNLSTM's (8u,) = ({8 * units},)"
            )
        weights["bias"] = bias
    dtypes = {str(w.dtype) for w in weights.values()}
    if len(dtypes) != 1 or dtypes.pop() not in ("float16", "float32", "float64"):
        kinds = sorted(str(w.dtype) for w in weights.values())
        return None, f"not an LSTM the reference runs: {shapes}: weights of dtypes {kinds}"
    if cudnn:
        weights = cudnn_to_lstm(weights)
    direction = next((d for part in prefix.split("/") for d in ("forward", "backward") if part.startswith(d + "_")), "")
    stored = {role: f"{name} {tuple(value.shape)}" for role, (name, value) in roles.items()}
    return FoundLSTM(
        name=prefix,
        layer=layer,
        weights=weights,
        stored=stored,
        units=int(units),
        input_dim=int(kernel.shape[0]),
        cudnn=cudnn,
        direction=direction,
        dtype=str(kernel.dtype),
    ), None


def _name_rows(layer, found):
    """Row names: the layer's for its only LSTM; ``layer/<prefix part>``
    (``bi/forward_lstm``) for several, tf_keras' trailing ``lstm_cell``
    and a repeated layer name dropped."""
    if len(found) == 1:
        found[0].name = layer
        return
    for lstm in found:
        parts = [p for p in lstm.name.split("/") if p]
        if parts and parts[-1] in ("lstm_cell", "cell"):
            parts = parts[:-1]
        if parts and parts[0] == layer:
            parts = parts[1:]
        lstm.name = "/".join([layer, *parts])
    seen = {}
    for lstm in found:
        seen[lstm.name] = seen.get(lstm.name, 0) + 1
    if any(n > 1 for n in seen.values()):
        for k, lstm in enumerate(found):
            lstm.name = f"{lstm.name}#{k}"


def cudnn_to_lstm(weights):
    """A CuDNNLSTM's ``kernel``, ``recurrent_kernel`` and ``bias`` (8u) as an
    LSTM's, exactly as tf_keras' loader converts them
    (``tf_keras/src/saving/legacy/hdf5_format.py`` ``_convert_rnn_weights``,
    ``convert_lstm_weights(from_cudnn=True)``): per gate block, input kernels
    ``k.T.reshape(k.shape, order="F")``, recurrent kernels ``k.T``; the two
    biases summed (keras PR #8307)."""

    def per_gate(kernel, func):
        return np.hstack([func(k) for k in np.hsplit(kernel, 4)])

    return {
        "kernel": per_gate(weights["kernel"], lambda k: k.T.reshape(k.shape, order="F")),
        "recurrent_kernel": per_gate(weights["recurrent_kernel"], lambda k: k.T),
        "bias": np.sum(np.split(weights["bias"], 2, axis=0), axis=0),
    }


# -- the assumed config -------------------------------------------------------------------------------------------


def _version(text):
    """``(major, minor, patch), tf`` of a keras_version, or (None, False)."""
    if text is None:
        return None, False
    match = re.match(r"^(\d+)\.(\d+)(?:\.(\d+))?", text.strip())
    if not match:
        return None, False
    return tuple(int(g or 0) for g in match.groups()), text.strip().endswith("-tf")


def recurrent_activation_default(keras_version):
    """``(value, why)``: LSTM's default ``recurrent_activation`` in the Keras
    that wrote the file (module docstring); value None where it is unknown."""
    version, tf = _version(keras_version)
    if keras_version is None:
        return None, (
            "the file has no keras_version attribute (tf_keras' loader reads it as Keras 1), so LSTM's "
            "default recurrent_activation is unknown"
        )
    if version is None:
        return None, f"keras_version {keras_version!r} is not a version number"
    if version[0] != 2:
        return None, f"keras_version {keras_version} is not Keras 2"
    if tf and (2, 2, 4) <= version < (2, 3, 0):
        return None, (
            f"keras_version {keras_version} was written by tf.keras in TF 1.13-1.15 (LSTM default "
            "hard_sigmoid) and TF 2.0-2.1 (default sigmoid)"
        )
    if version < (2, 3, 0):
        return "hard_sigmoid", f"Keras {keras_version}: LSTM's default before 2.3.0"
    return "sigmoid", f"Keras {keras_version}: LSTM's default from 2.3.0 on"


def parse_configs(specs):
    """``--config [NAME=]JSON`` values: ``[(name or None, dict, spec)]``."""
    out = []
    for spec in specs:
        text = spec.strip()
        name = None
        if not text.startswith("{"):
            name, sep, text = spec.partition("=")
            name = name.strip()
            if not sep or not name:
                raise InputError(
                    f"--config {spec!r}: expected NAME='{{...}}' (a layer of the file) or '{{...}}' "
                    "(every LSTM of the file)"
                )
        try:
            config = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InputError(f"--config {spec!r}: not valid JSON ({exc.msg} at column {exc.colno})") from None
        if not isinstance(config, dict):
            raise InputError(f"--config {spec!r}: must be a JSON object of LSTM arguments")
        out.append((name, config, spec))
    return out


def unmatched(configs, files):
    """``(name, why)`` for the first NAME of ``configs`` that names no LSTM
    (a row, or a file layer holding LSTMs) in any of ``files``, or None."""
    known = {n for f in files for lstm in f.lstms for n in (lstm.name, lstm.layer)}
    skipped = {n: why for f in files for n, why in f.skipped}
    for name, _, _ in configs:
        if name is not None and name not in known:
            if name in skipped:
                return name, f"{name!r} is not an LSTM it checks ({skipped[name]})"
            return name, f"no LSTM or layer named {name!r}; its LSTMs: {', '.join(sorted(known)) or 'none'}"
    return None


def assume(wfile, configs):
    """Each LSTM's config and the origin of each value; the LSTMs whose
    ``recurrent_activation`` stays unknown move to ``wfile.skipped``.
    Raises :class:`InputError` for an override that contradicts the weights
    or another override."""
    default, why = recurrent_activation_default(wfile.keras_version)
    kept = []
    for lstm in wfile.lstms:
        config = {
            "units": lstm.units,
            "activation": "tanh",
            "recurrent_activation": default,
            "use_bias": "bias" in lstm.weights,
            "go_backwards": lstm.direction == "backward",
            "dtype": lstm.dtype,
        }
        shapes = "; ".join(lstm.stored.values())
        origin = {
            "units": {"from": FILE, "why": f"recurrent_kernel {lstm.stored['recurrent_kernel']}: (u, 4u)"},
            "activation": {"from": KERAS, "why": "tanh in every Keras 2"},
            "recurrent_activation": {"from": VERSION, "why": why},
            "use_bias": {"from": FILE, "why": "a bias weight" if "bias" in lstm.weights else "no bias weight"},
            "go_backwards": (
                {"from": FILE, "why": "a Bidirectional's backward_ layer (go_backwards flipped)"}
                if lstm.direction == "backward"
                else {"from": KERAS, "why": "not stored in weights; Keras' default"}
            ),
            "dtype": {"from": FILE, "why": f"{lstm.dtype} weights"},
        }
        if lstm.cudnn:
            config["recurrent_activation"] = "sigmoid"
            origin["activation"] = {"from": FILE, "why": "a CuDNNLSTM (bias 8u): cuDNN's tanh"}
            origin["recurrent_activation"] = {"from": FILE, "why": "a CuDNNLSTM (bias 8u): cuDNN's sigmoid"}
        given = {}
        for name, override, spec in configs:
            if name not in (None, lstm.name, lstm.layer):
                continue
            for key, value in override.items():
                if key in given and given[key][0] != value:
                    raise InputError(
                        f"conflicting --config for {lstm.name}: {key}={given[key][0]!r} "
                        f"({given[key][1]}) and {key}={value!r} ({spec})"
                    )
                given[key] = (value, spec)
        for key, (value, spec) in given.items():
            if key == "units" and value != lstm.units:
                raise InputError(
                    f"--config {spec}: units={value!r} contradicts {lstm.name}'s weights ({shapes}: units {lstm.units})"
                )
            if key == "use_bias" and value != ("bias" in lstm.weights):
                raise InputError(
                    f"--config {spec}: use_bias={value!r} contradicts {lstm.name}'s weights "
                    f"({'a' if 'bias' in lstm.weights else 'no'} bias weight)"
                )
            if lstm.cudnn and key in ("activation", "recurrent_activation") and value != config[key]:
                raise InputError(
                    f"--config {spec}: {key}={value!r} contradicts {lstm.name}'s weights: a CuDNNLSTM "
                    f"(bias 8u) computes with cuDNN's {config[key]}"
                )
            config[key] = value
            origin[key] = {"from": USER, "why": f"--config {spec}"}
        if config["recurrent_activation"] is None:
            wfile.skipped.append(
                (
                    lstm.name,
                    f"{why}: give it, e.g. --config {lstm.name}="
                    '\'{"recurrent_activation": "sigmoid"}\' (or "hard_sigmoid")',
                )
            )
            continue
        try:
            Case(KIND, config, None, {}).reference()
        except LstmRefError as exc:
            raise InputError(f"--config for {lstm.name}: {exc}") from None
        lstm.config, lstm.origin = config, origin
        kept.append(lstm)
    wfile.lstms = kept
    return wfile


def assumed_json(wfile, lstm):
    """What a row records of the semantics it was checked under."""
    return {
        "keras_version": wfile.keras_version,
        "backend": wfile.backend,
        "config": dict(lstm.config),
        "from": {k: dict(v) for k, v in lstm.origin.items()},
        "weights": dict(lstm.stored),
        "converted": (
            "CuDNNLSTM -> LSTM as tf_keras' loader (_convert_rnn_weights): kernels re-laid per gate, biases summed"
        )
        if lstm.cudnn
        else None,
    }


# -- the check --------------------------------------------------------------------------------------------------


def check_file(wfile, pool, batch=2, time=7, seed=0):
    """Each LSTM of ``wfile`` (after :func:`assume`) alone, on drawn x,
    through its kind's oracle and the reference: ``(results, skipped)``."""
    results, skipped = [], list(wfile.skipped)
    rng = np.random.default_rng(seed)
    oracle = pool.for_kind(KIND)
    for lstm in wfile.lstms:
        x = rng.standard_normal((batch, time, lstm.input_dim)).astype(lstm.dtype)
        case = Case(KIND, lstm.config, x, lstm.weights, name=lstm.name, platform=chosen())
        try:
            ref = case.reference()
            ref.params(lstm.weights, lstm.input_dim, ref.policy.compute)  # a WeightError names the culprit
        except LstmRefError as exc:
            skipped.append((lstm.name, f"{lstm.source}: {exc}"))
            continue
        desired = oracle.run(case)
        row, _, _ = compare_layer(lstm.name, case, desired)
        row.source = lstm.source
        row.assumed = assumed_json(wfile, lstm)
        row.notes = "; ".join(n for n in (row.notes, _note(lstm)) if n)
        results.append(row)
    return results, skipped


def _note(lstm):
    said = [
        f"{k}={v!r} ({lstm.origin[k]['from']})"
        for k, v in lstm.config.items()
        if k in lstm.origin and lstm.origin[k]["from"] != FILE
    ]
    return "run alone on drawn x, no mask, zero initial state; assumed " + ", ".join(said)


# -- as a source: convert WEIGHTS.h5, check PORT --source WEIGHTS.h5 ----------------------------------------------


def _unit_config(lstm):
    """The config a converter reads: the assumed one, with ``return_sequences``
    (not stored in weights; inert for the numbers, ``tf_keras_lstm.py``) True:
    a torch/ONNX LSTM returns every step, and so does each port of it."""
    return {**lstm.config, "return_sequences": True}


def _bidi(lstm):
    """A direction of a Bidirectional file layer, as :mod:`..artifacts` groups
    them into one bidirectional module (merge_mode is not stored: the
    module returns both directions concatenated, Keras' default)."""
    if not lstm.direction:
        return None
    return {"wrapper": lstm.layer, "direction": lstm.direction, "merge_mode": "concat"}


# what lstm_ref.convert writes to each target: activation names (_to_torch, _to_onnx, _ONNX_NAMES; Keras
# 2's hard_sigmoid as ONNX's HardSigmoid(alpha 0.2, beta 0.5), _ONNX_PARAMETERS)
_ONNX_WRITES = ("sigmoid", "tanh", "relu", "hard_sigmoid")
_WRITES = {
    "torch.nn.LSTM": {"recurrent_activation": ("sigmoid",), "activation": ("tanh",)},
    "onnx.LSTM": {"recurrent_activation": _ONNX_WRITES, "activation": _ONNX_WRITES},
    # _to_keras: the portable names; Keras 2's hard_sigmoid is refused (_keras_name: Keras 3's is another function)
    "keras.layers.LSTM": {"recurrent_activation": _ONNX_WRITES[:3], "activation": _ONNX_WRITES[:3]},
}


def refuse_unportable(wfile, target):
    """Refuse (:class:`InputError`) an LSTM whose assumed activations
    ``target`` (``torch.nn.LSTM``, ``onnx.LSTM``, ``keras.layers.LSTM``) does not get from
    ``lstm_ref.convert``, saying why, where the value came from (file,
    version default, user) and how to state another.  Keras 2's
    ``hard_sigmoid`` is ``clip(0.2 x + 0.5, 0, 1)`` (``lstm_ref/activations.py``):
    ``torch.nn.LSTM`` has sigmoid gates only; ONNX's ``HardSigmoid`` (alpha
    0.2, beta 0.5) is the same function, which ``lstm_ref.convert`` writes;
    and Keras 3's ``hard_sigmoid`` is another function (``relu6(x + 3) /
    6``), so the name must never be carried across."""
    for lstm in wfile.lstms:
        for key, allowed in _WRITES[target].items():
            value = lstm.config[key]
            if value in allowed:
                continue
            origin = lstm.origin[key]
            if value == "hard_sigmoid":
                what = "Keras 2's hard_sigmoid, clip(0.2 x + 0.5, 0, 1)"
                if target == "keras.layers.LSTM":
                    cannot = (
                        "Keras 3's hard_sigmoid is relu6(x + 3) / 6, another function, and keras.layers.LSTM "
                        "takes no other hard sigmoid by name"
                    )
                else:
                    cannot = (
                        "torch.nn.LSTM computes its gates with sigmoid only"
                        if target == "torch.nn.LSTM"
                        else f"lstm_ref.convert writes no {target} that computes it"
                    ) + " (and Keras 3's hard_sigmoid, relu6(x + 3) / 6, is another function)"
            else:
                what = repr(value)
                cannot = f"lstm_ref.convert writes {' or '.join(allowed)} there to {target}"
            wanted = "sigmoid" if key == "recurrent_activation" else "tanh"
            hint = json.dumps({key: wanted})
            raise InputError(
                f"{lstm.name}: cannot convert to {target}: its {key} is {what} "
                f"[{origin['from']}: {origin['why']}], and {cannot}; if the model was built with "
                f"{key}={wanted!r}, say so: --config {lstm.name}='{hint}'"
            )


def convert_units(wfile):
    """The file's LSTMs (after :func:`assume`) as :class:`~lstm_ref.harness.artifacts.Lstm`
    units for :func:`~lstm_ref.harness.artifacts.convert_lstms`: no model run
    (a weights-only file stores no topology, so each LSTM of an ONNX port has
    its own input), a Bidirectional's two directions one bidirectional module."""
    from .artifacts import Lstm

    @dataclass
    class _Unit(Lstm):
        input_dim: int = 0

        @property
        def features(self):
            return self.parts[0].features if self.parts else self.input_dim

    return [
        _Unit(
            lstm.name,
            KIND,
            _unit_config(lstm),
            lstm.weights,
            f"{KIND} ({lstm.source})",
            bidi=_bidi(lstm),
            input_dim=lstm.input_dim,
        )
        for lstm in wfile.lstms
    ]


def source_lstms(wfile, pool, batch=2, time=7, seed=0):
    """The file's LSTMs (after :func:`assume`) as ``check PORT --source
    WEIGHTS.h5`` pairs them (:func:`~lstm_ref.harness.artifacts.check_pairs`):
    each run by tf_keras on drawn x (``batch`` x ``time``, seeded; a
    Bidirectional's two directions on the same x), no mask, zero initial
    state, with TF's outputs recorded as a Keras model run's are."""
    from .artifacts import Lstm

    oracle = pool.for_kind(KIND)
    rng = np.random.default_rng([seed, 2])
    drawn, units = {}, []
    for lstm in wfile.lstms:
        key = lstm.layer if lstm.direction else lstm.name
        if key not in drawn:
            drawn[key] = rng.standard_normal((batch, time, lstm.input_dim)).astype(lstm.dtype)
        case = Case(KIND, _unit_config(lstm), drawn[key], lstm.weights, name=lstm.name, platform=chosen())
        outputs = oracle.run(case)
        units.append(
            Lstm(
                lstm.name,
                KIND,
                case.config,
                lstm.weights,
                f"{KIND} on drawn x ({lstm.source}; assumed {_note(lstm).rpartition('assumed ')[2] or 'nothing'})",
                recorded={"case": case, "outputs": dict(outputs)},
                bidi=_bidi(lstm),
            )
        )
    return units
