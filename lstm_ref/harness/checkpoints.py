"""Load one cell's variables from a TensorFlow checkpoint or SavedModel.

    >>> w = lstm_ref.harness.checkpoints.load_weights("train/model.ckpt-1000", "rnn/lstm_cell")
    >>> sorted(w)                    # keyed as the references want them
    ['bias', 'kernel', 'projection/kernel', 'w_f_diag', 'w_i_diag', 'w_o_diag']

``path`` may be a checkpoint prefix, a directory holding a ``checkpoint``
file (the latest checkpoint is read), or a SavedModel directory (its
``variables/variables`` checkpoint is read).

TF1 checkpoints (``tf.compat.v1.train.Saver``, and TF1 SavedModels) are keyed
by variable name: a ``dynamic_rnn`` over an LSTMCell stores
``rnn/lstm_cell/kernel``, ``rnn/lstm_cell/bias``, ... and ``scope`` is that
prefix.  Optimizer slots (``rnn/lstm_cell/kernel/Adam``) extend another
variable's name and are left out.  TF2 checkpoints are keyed by object path
(``model/cell/kernel/.ATTRIBUTES/VARIABLE_VALUE``, with "/" inside a name
stored as ".S": ``projection.Skernel``); there ``scope`` is the object path
(``model/cell``), or, for a TF2 SavedModel, the variables' own
names, which the SavedModel keeps.

TensorFlow is imported only when this module's functions are called, so the
reference itself never needs it.
"""

import contextlib
import os
import re
import sys
import tempfile
from pathlib import Path

import numpy as np

from ..errors import WeightError

_ATTR = "/.ATTRIBUTES/VARIABLE_VALUE"


@contextlib.contextmanager
def _stderr_held():
    """File descriptor 2 into a temporary file while the block runs, then
    back; the held text goes to stderr only if the block raised.  TF 2.21
    writes its C++ start-up lines (absl's "All log messages before
    absl::InitializeLog()", oneDNN's notice, the CUDA stub's) straight to
    fd 2 at import, whatever TF_CPP_MIN_LOG_LEVEL says (measured: 3 lines,
    6 in a run that imports it twice)."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        try:
            yield
        except BaseException:
            os.dup2(saved, 2)
            held.seek(0)
            sys.stderr.write(held.read().decode(errors="replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def _tensorflow():
    """``tensorflow``, imported with its start-up lines held back."""
    if "tensorflow" in sys.modules:
        return sys.modules["tensorflow"]
    with _stderr_held():
        import tensorflow as tf
    return tf


def _resolve(path):
    """(checkpoint prefix, SavedModel dir or None) for ``path``."""
    tf = _tensorflow()

    p = Path(path)
    if p.is_dir() and ((p / "saved_model.pb").exists() or (p / "saved_model.pbtxt").exists()):
        return str(p / "variables" / "variables"), p
    if p.is_dir():
        latest = tf.train.latest_checkpoint(str(p))
        if latest is None:
            raise WeightError(f"{path}: a directory with neither a SavedModel nor a 'checkpoint' file")
        return latest, None
    if not Path(str(p) + ".index").exists() and not p.exists():
        raise WeightError(f"{path}: no checkpoint (no {p.name}.index) and no SavedModel here")
    return str(p), None


def _unescape(name):
    """Object-path components escape "/" as ".S" and "." as ".." (TF's
    trackable naming), e.g. ``projection.Skernel`` for ``projection/kernel``."""
    return re.sub(r"\.([S.])", lambda m: "/" if m.group(1) == "S" else ".", name)


def _drop_slots(names):
    """Names that do not extend another variable's name (optimizer slots do)."""
    names = set(names)
    return {n for n in names if not any(n.startswith(other + "/") for other in names if other != n)}


def _by_scope(variables: dict, scope: str, path, how: str) -> dict:
    scope = scope.strip("/")
    found = {name[len(scope) + 1 :]: value for name, value in variables.items() if name.startswith(scope + "/")}
    if not found:
        scopes = sorted({name.rsplit("/", 1)[0] if "/" in name else "" for name in variables})
        raise WeightError(f"{path}: no variable under scope {scope!r} ({how}); scopes found: {scopes}")
    return found


def load_weights(path, scope: str) -> dict:
    """The variables under ``scope``, keyed by their name below it, as NumPy
    arrays in their stored dtype (``kernel``, ``bias``, ``w_f_diag``,
    ``projection/kernel``, ...).  A scope with no variable raises
    :class:`~lstm_ref.WeightError` listing the scopes the file holds."""
    tf = _tensorflow()

    prefix, saved_model = _resolve(path)
    try:
        reader = tf.train.load_checkpoint(prefix)
    except (tf.errors.OpError, ValueError) as exc:
        raise WeightError(f"{path}: cannot be read as a checkpoint ({exc})") from None
    keys = reader.get_variable_to_shape_map()
    named = {k for k in keys if "/.ATTRIBUTES/" not in k and not k.startswith("_CHECKPOINTABLE")}
    if named:  # TF1: keyed by variable name
        variables = {k: reader.get_tensor(k) for k in _drop_slots(named)}
        return {k: np.asarray(v) for k, v in _by_scope(variables, scope, path, "by variable name").items()}
    # TF2: keyed by object path.  Slot variables live under "optimizer/..."
    # or ".OPTIMIZER_SLOT/..."; both keep their own paths, not the variable's.
    objects = {k[: -len(_ATTR)]: k for k in keys if k.endswith(_ATTR) and "/.OPTIMIZER_SLOT/" not in k}
    scope_ = scope.strip("/")
    if any(p.startswith(scope_ + "/") for p in objects):
        return {
            _unescape(name): np.asarray(reader.get_tensor(objects[scope_ + "/" + name]))
            for name in _by_scope(dict.fromkeys(objects), scope, path, "by object path")
        }
    if saved_model is not None:
        loaded = tf.saved_model.load(str(saved_model))
        variables = {}
        for obj in tf.train.TrackableView(loaded).descendants():
            if isinstance(obj, tf.Variable):
                variables[obj.name.rsplit(":", 1)[0]] = obj.numpy()
        by_name = dict(variables)
        if any(n.startswith(scope_ + "/") for n in by_name):
            return _by_scope(by_name, scope, path, "by variable name")
        raise WeightError(
            f"{path}: no variable under scope {scope!r}; object paths found: "
            f"{sorted({p.rsplit('/', 1)[0] for p in objects})}; variable names found: "
            f"{sorted({n.rsplit('/', 1)[0] for n in by_name})}"
        )
    return _by_scope(dict.fromkeys(objects), scope, path, "by object path")
