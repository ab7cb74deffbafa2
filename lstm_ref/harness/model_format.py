"""Which oracle worker opens a saved model: ``model_format(path)``.

NumPy/h5py only (no TensorFlow import), so that the command line can say what
a file is, and refuse what is not a model, before a worker starts.

  * a ``.keras`` archive (a zip holding ``config.json`` and ``metadata.json``,
    ``keras/src/saving/saving_lib.py``) is Keras 3;
  * an HDF5 file with ``layer_names`` and no ``model_config`` is a Keras 2
    ``save_weights`` file (``tf_keras/src/saving/legacy/hdf5_format.py``
    ``save_weights_to_hdf5_group``): ``check`` reads it
    (:mod:`~lstm_ref.harness.keras_weights`), other commands refuse it; a
    Keras 3 ``.weights.h5`` (``layers`` and ``vars`` groups) is refused;
  * an HDF5 model (``model_config`` attribute) is Keras 3 or Keras 2 by its
    ``keras_version`` attribute: both write ``str(keras.__version__)`` at the
    file's root (``keras/src/legacy/saving/saving_utils.py``
    ``model_metadata``; ``tf_keras/src/saving/legacy/saving_utils.py``) and on
    its ``model_weights`` group.  A file without it (Keras < 2.1) is taken as
    Keras 2;
  * a SavedModel directory with ``keras_metadata.pb`` is a Keras 2
    ``model.save(dir)`` (``tf_keras/src/saving/legacy/saved_model/save.py``
    writes it next to ``saved_model.pb``).  A SavedModel without it (a Keras 3
    ``model.export()``, ``tf.saved_model.save``) holds no Keras layers to
    walk: it is checked by variable scope (``--scope``);
  * an ONNX model (``.onnx``; a ``ModelProto`` whose first field is
    ``ir_version``, byte 0x08) goes to the onnxruntime worker, which parses
    it (``onnx_artifacts.py``) and refuses what ``onnx.load`` cannot read;
  * a PyTorch file: ``torch.save`` and ``torch.jit.save`` both write a zip
    archive with ``<name>/data.pkl``; TorchScript has ``<name>/code/`` as
    well.  Whether a ``torch.save`` archive holds a state_dict or a pickled
    module only ``torch.load(weights_only=True)`` can tell: the torch worker
    decides (``torch_artifacts.py``).  The legacy non-zip ``torch.save``
    format starts with pickle's protocol 2 and a magic number.
"""

import json
import os
import zipfile

from ..errors import InputError

_ZIP = b"PK\x03\x04"
_EMPTY_ZIP = b"PK\x05\x06"
_HDF5 = b"\x89HDF\r\n\x1a\n"
_NPY = b"\x93NUMPY"
_TORCH_LEGACY = b"\x80\x02\x8a\n"  # pickle protocol 2, then torch's magic number (a 10-byte long)
# A ModelProto starts with ir_version (field 1, varint: 0x08, then 3..12);
# protobuf writes fields in number order, so the next tag is one of
# producer_name (0x12), producer_version (0x1a), domain (0x22),
# model_version (0x28), doc_string (0x32), graph (0x3a), opset_import (0x42),
# metadata_props (0x72), training_info (0xa2 0x01), functions (0xca 0x01).
_ONNX_NEXT = {0x12, 0x1A, 0x22, 0x28, 0x32, 0x3A, 0x42, 0x72, 0xA2, 0xCA}
FORMATS = ".keras, .h5, a SavedModel directory, .onnx or .pt"
_SCOPE_HINT = (
    "it can be checked by variable scope: lstm-ref check PATH --scope <scope> --kind <kind> "
    "--config <json> --input x.npy"
)


def _text(value):
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    value = str(value)
    if value.startswith('"') and value.endswith('"'):  # a JSON-encoded string
        try:
            value = json.loads(value)
        except ValueError:
            pass
    return value


def _read(path):
    with open(path, "rb") as f:
        return f.read()


def _savedmodel(path):
    names = set(os.listdir(path))
    if "saved_model.pb" not in names and "saved_model.pbtxt" not in names:
        if {"config.json", "metadata.json"} <= names:
            version = _keras_zip_version(lambda name: _read(os.path.join(path, name)), path)
            return "keras3", f"Keras {version} model directory (unzipped .keras)"
        raise InputError(f"{path} is a directory but not a SavedModel (no saved_model.pb in it)")
    if "keras_metadata.pb" not in names:
        raise InputError(
            f"{path} is a SavedModel without keras_metadata.pb (a Keras 3 model.export() or "
            f"tf.saved_model.save): it holds no Keras layers to walk; {_SCOPE_HINT}"
        )
    return "tf_keras", "Keras 2 SavedModel directory (keras_metadata.pb)"


def _keras_zip_version(read, path):
    try:
        metadata = json.loads(read("metadata.json"))
    except (KeyError, ValueError, OSError) as exc:
        raise InputError(f"{path}: unreadable metadata.json in the .keras archive ({exc})") from None
    return str(metadata.get("keras_version", "3 (no keras_version in metadata.json)"))


def _zip(path):
    try:
        with zipfile.ZipFile(path) as zf:
            names = set(zf.namelist())
            bad = zf.testzip()
            if bad is not None:
                raise InputError(f"{path} is a corrupt zip archive (bad CRC in {bad})")
            if {"config.json", "metadata.json"} <= names:
                version = _keras_zip_version(zf.read, path)
                if not version.startswith("3"):
                    raise InputError(
                        f"{path} is a .keras archive written by Keras {version}; lstm-ref opens Keras 3 .keras archives"
                    )
                return "keras3", f"Keras {version} .keras archive"
    except zipfile.BadZipFile as exc:
        raise InputError(f"{path} is not a readable .keras archive (truncated or corrupt zip: {exc})") from None
    except (OSError, EOFError) as exc:  # a truncated member
        raise InputError(f"{path} is not a readable .keras archive (truncated or corrupt zip: {exc})") from None
    if any(n.endswith("/data.pkl") or n == "data.pkl" for n in names):
        if any("/code/" in n or n.endswith("constants.pkl") for n in names):
            return "torch", "TorchScript archive (torch.jit.save)"
        return "torch", "PyTorch archive (torch.save)"
    if names and all(n.endswith(".npy") for n in names):
        raise InputError(f"{path} is a NumPy .npz archive, not a model; give arrays with --input")
    raise InputError(
        f"{path} is a zip archive without config.json and metadata.json (a .keras model) or data.pkl "
        "(a torch.save / torch.jit.save file), not a model"
    )


def _hdf5(path, weights_only=False):
    try:
        import h5py
    except ImportError:  # pragma: no cover - h5py comes with the oracle and test extras
        raise InputError(
            f"{path} is an HDF5 file; telling Keras 2 from Keras 3 .h5 models needs h5py (pip install h5py)"
        ) from None

    try:
        with h5py.File(path, "r") as f:
            attrs = dict(f.attrs)
            weights = f.get("model_weights")
            if "keras_version" not in attrs and weights is not None:
                attrs.update({k: v for k, v in weights.attrs.items() if k == "keras_version"})
    except OSError as exc:
        raise InputError(
            f"{path} is not a readable HDF5 file (truncated or corrupt: {str(exc).splitlines()[0]})"
        ) from None
    if "model_config" not in attrs:
        from .keras_weights import FORMAT, probe, read

        kind = probe(path)
        if weights_only and kind == "keras2":
            return FORMAT, read(path).describe()  # read whole: a broken file is refused before TF starts
        if kind == "keras3":
            raise InputError(
                f"{path} is a Keras 3 weights-only file (.weights.h5, save_weights): lstm-ref checks "
                "Keras 2 weights-only files; save the whole model (model.save, .keras)"
            )
        if kind == "keras2":
            raise InputError(
                f"{path} is an HDF5 file without a model_config attribute: weights only (Keras 2 "
                "save_weights); lstm-ref check reads those, this command needs the whole model "
                "(model.save)"
            )
        raise InputError(
            f"{path} is an HDF5 file without a model_config attribute: weights only "
            f"(save_weights) or not written by Keras; save the whole model (model.save)"
        )
    if "keras_version" not in attrs:
        return "tf_keras", "Keras 2 HDF5 model (no keras_version attribute: older than Keras 2.1)"
    version = _text(attrs["keras_version"])
    if version.startswith("3"):
        return "keras3", f"Keras {version} HDF5 model"
    if version.startswith("2"):
        return "tf_keras", f"Keras {version} HDF5 model"
    raise InputError(f"{path} is an HDF5 model written by Keras {version}; lstm-ref opens Keras 2 and 3 models")


def _onnx_like(head):
    return len(head) > 2 and head[0] == 0x08 and 1 <= head[1] <= 30 and head[2] in _ONNX_NEXT


def model_format(path, weights=False):
    """``("keras3" | "tf_keras" | "onnxruntime" | "torch", description)``:
    the worker that opens ``path``, and what it is.  Raises :class:`lstm_ref.errors.InputError`
    naming the file and why it is not a model lstm-ref can walk.

    ``weights=True`` (``lstm-ref check``): a Keras 2 weights-only ``.h5``
    (``save_weights``: ``layer_names`` at its root, no ``model_config``) is
    ``("keras_weights", description)`` (:mod:`~lstm_ref.harness.keras_weights`:
    no worker opens it whole; each LSTM in it runs alone).  Without it such a
    file is refused, as before, for the commands that need a whole model."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise InputError(f"{path}: no such file or directory")
    if os.path.isdir(path):
        return _savedmodel(path)
    try:
        with open(path, "rb") as f:
            head = f.read(512)
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror or exc})") from None
    if not head:
        raise InputError(f"{path} is an empty file, not a model")
    if head.startswith(_HDF5):
        return _hdf5(path, weights_only=weights)
    if head.startswith(_ZIP) or head.startswith(_EMPTY_ZIP):
        return _zip(path)
    if head.startswith(_TORCH_LEGACY):
        return "torch", "PyTorch file (legacy torch.save format)"
    if _onnx_like(head):
        return "onnxruntime", "ONNX model"
    if head.startswith(_NPY):
        raise InputError(f"{path} is a NumPy array (.npy), not a model; give arrays with --input")
    if b"\0" not in head:
        try:
            head.decode("utf-8")
            text = True
        except UnicodeDecodeError as exc:
            text = exc.start >= len(head) - 3  # a character cut by the 512-byte read
        if text:
            raise InputError(f"{path} is a text file, not a Keras model or any model lstm-ref opens ({FORMATS})")
    if path.endswith(".onnx"):
        raise InputError(
            f"{path} is not an ONNX model: a ModelProto starts with its ir_version field (0x08), this "
            f"file with {head[:8]!r}"
        )
    raise InputError(f"{path} is not a model lstm-ref opens ({FORMATS}): unrecognised content starting {head[:8]!r}")
