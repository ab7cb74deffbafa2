"""Oracle worker for ``flax.nnx.LSTMCell`` and ``flax.nnx.OptimizedLSTMCell``
run by ``flax.nnx.RNN`` (flax 0.12.8, jax 0.10.2, CPU), in ``.venv-jax``.

A request is a :class:`lstm_ref.case.Case` on the wire.  The cell is built
from the config (``in_features`` from x when not given; ``gate_fn`` and
``activation_fn`` are names in ``flax.nnx``; ``param_dtype``/``dtype`` as
names), its parameters replaced by the ``w:<path>`` arrays (the cell's
``nnx.state(cell, nnx.Param)``, paths joined with ``/``; every path must be
given, no other), and run as a user runs it::

    carry, y = nnx.RNN(cell, reverse=..., keep_order=...)(
        x, initial_carry=(c0, h0), seq_lengths=mask.sum(1), return_carry=True)

x batch-major (``time_major=True`` in the config: transposed in and out),
in ``param_dtype``.  The reply is ``h`` (y), ``final_h`` and ``final_c``
(the carry, which Flax orders ``(c, h)``).  With ``cross_check`` the same
call is made again under ``nnx.jit`` and must agree bitwise.  ``grad``
differentiates the same call with ``nnx.grad`` (:func:`grad`), the per-step
carries through the cell wrapped in :class:`_PerturbedCell`.

``read_params`` opens a Flax checkpoint for ``lstm-ref check``
(``lstm_ref/harness/flax_checkpoints.py``): a msgpack'd tree
(``flax.serialization.msgpack_restore``) or an orbax checkpoint directory
(``orbax.checkpoint.PyTreeCheckpointer().restore``), flattened to
``/``-joined paths.
"""

import functools
import json
import os

os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1")

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)  # float64 params stay float64; float32 ones stay float32
jax.config.update("jax_platforms", "cpu")

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from flax import nnx  # noqa: E402
from flax.nnx.nn.recurrent import flip_sequences  # noqa: E402

from lstm_ref.harness.oracles import protocol, provenance  # noqa: E402

CELLS = {"flax.nnx.LSTMCell": nnx.LSTMCell, "flax.nnx.OptimizedLSTMCell": nnx.OptimizedLSTMCell}
_CELL_KEYS = ("gate_fn", "activation_fn", "param_dtype", "dtype")
_RNN_KEYS = ("reverse", "keep_order", "time_major", "unroll")
_modules = {}  # (kind, config, features) -> nnx.RNN; its parameters are replaced per request
# nnx.RNN called eagerly traces and compiles its scan again at every call (about 100 ms, and 3.5 MB
# that jax's caches keep: +1.4 GB over 400 live examples, measured).  Dropping the caches costs the
# next calls more than the compiles they save (every 50 requests: 6.7 -> 3.2 examples/s), so they
# are dropped only when the worker has grown past CACHE_LIMIT_MB.
CACHE_LIMIT_MB = 3000
_served = [0]


def _resident_mb():
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):  # not Linux: no bound
        return 0.0


def _bounded_caches():
    _served[0] += 1
    if _served[0] % 20 == 0 and _resident_mb() > CACHE_LIMIT_MB:
        jax.clear_caches()


def _function(name, role):
    fn = getattr(nnx, name, None) if isinstance(name, str) else None
    if not callable(fn):
        raise protocol.UserError(f"config[{role!r}]={name!r} is not a function of flax.nnx")
    return fn


def _rnn_inputs(x, arrays, dtype, time_major):
    """``nnx.RNN``'s inputs from the wire: x (time-major if asked), the
    initial carry ``(c, h)`` (Flax's order) or None, the lengths of the mask or None."""
    xs = jnp.asarray(x, dtype)
    if time_major:
        xs = jnp.swapaxes(xs, 0, 1)
    carry = None
    if "h0" in arrays:
        carry = (jnp.asarray(arrays["c0"], dtype), jnp.asarray(arrays["h0"], dtype))
    lengths = None
    if "mask" in arrays:
        lengths = jnp.asarray(protocol.sequence_lengths(arrays["mask"]))
    return xs, carry, lengths


def _build(kind, config, features):
    key = (kind, json.dumps(config, sort_keys=True), features)
    if key not in _modules:
        if len(_modules) >= 32:
            _modules.clear()
        cell = CELLS[kind](
            config.get("in_features") or features,
            config["hidden_features"],
            gate_fn=_function(config.get("gate_fn", "sigmoid"), "gate_fn"),
            activation_fn=_function(config.get("activation_fn", "tanh"), "activation_fn"),
            param_dtype=jnp.dtype(config.get("param_dtype", "float32")),
            dtype=None if config.get("dtype") is None else jnp.dtype(config["dtype"]),
            rngs=nnx.Rngs(0),
        )
        rnn_kwargs = {k: config[k] for k in _RNN_KEYS if k in config}
        _modules[key] = nnx.RNN(cell, **rnn_kwargs)
    return _modules[key]


def _paths(tree, prefix=()):
    """``{path joined with '/': leaf}`` of a nested dict."""
    out = {}
    for key, value in tree.items():
        path = (*prefix, str(key))
        if isinstance(value, dict):
            out.update(_paths(value, path))
        else:
            out["/".join(path)] = value
    return out


def _load(cell, arrays):
    """Replace the cell's parameters with the ``w:`` arrays, path by path."""
    state = nnx.state(cell, nnx.Param)
    own = _paths(nnx.to_pure_dict(state))
    given = {k[2:]: v for k, v in arrays.items() if k.startswith("w:")}
    if set(given) != set(own):
        raise protocol.UserError(
            f"the cell's parameters are {sorted(own)}; got {sorted(given)} "
            f"(missing {sorted(set(own) - set(given))}, unknown {sorted(set(given) - set(own))})"
        )
    nested = {}
    for path, value in given.items():
        if np.shape(value) != np.shape(own[path]):
            raise protocol.UserError(f"parameter {path!r} has shape {np.shape(value)}, the cell's {own[path].shape}")
        node = nested
        *parents, leaf = path.split("/")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = jnp.asarray(value, own[path].dtype)
    nnx.replace_by_pure_dict(state, nested)
    nnx.update(cell, state)


def _call(rnn, x, carry, lengths):
    return rnn(x, initial_carry=carry, seq_lengths=lengths, return_carry=True)


@nnx.jit
def _jitted(rnn, x, carry, lengths):
    return _call(rnn, x, carry, lengths)


def forward(meta, arrays, jit=False):
    config = meta["config"]
    x = arrays["x"]
    rnn = _build(meta["kind"], config, int(x.shape[-1]))
    _load(rnn.cell, arrays)
    dtype = jnp.dtype(config.get("param_dtype", "float32"))
    xs, carry, lengths = _rnn_inputs(x, arrays, dtype, config.get("time_major"))
    (c, h), y = (_jitted if jit else _call)(rnn, xs, carry, lengths)
    y = np.asarray(y)
    if config.get("time_major"):
        y = np.swapaxes(y, 0, 1)
    return {"h": np.ascontiguousarray(y), "final_h": np.asarray(h), "final_c": np.asarray(c)}


_FIELDS = ("h", "final_h", "final_c")


class _PerturbedCell(nnx.Module):
    """The real cell with its new carry ``(c + e_c, h + e_h)``, the zero
    perturbations read from the input's last ``2 * hidden`` columns (after
    the cell computed h from c: c's perturbation holds that step's h).
    dL/de at step t is dL/d(the state the cell computes at step t), the
    per-step view that ``jax.grad`` cannot give of carries inside the scan.
    Adding a zero changes no bit of the forward."""

    def __init__(self, cell, features):
        self.cell, self.features = cell, features

    @property
    def num_feature_axes(self):
        return 1

    def initialize_carry(self, input_shape, rngs=None):
        return self.cell.initialize_carry(input_shape, rngs)

    def __call__(self, carry, inputs):
        d, n = self.features, self.cell.hidden_features
        (c, h), _ = self.cell(carry, inputs[..., :d])
        h = h + inputs[..., d : d + n]
        c = c + inputs[..., d + n :]
        return (c, h), h


def _loss(model, inputs, initial, lengths, ups, time_major):
    (c, h), y = model(inputs, initial_carry=initial, seq_lengths=lengths, return_carry=True)
    fields = {"h": jnp.swapaxes(y, 0, 1) if time_major else y, "final_h": h, "final_c": c}
    return sum(jnp.sum(fields[k] * v.astype(fields[k].dtype)) for k, v in ups.items())


@functools.partial(nnx.jit, static_argnames=("time_major",))
def _differentiate(rnn, probe, xs, carry, lengths, ups, eps, time_major):
    """``(dL/d(rnn, xs, carry), dL/d(eps, xs))``: the real ``nnx.RNN``'s and
    the probe's (:class:`_PerturbedCell`), compiled once per config and shapes."""

    def real(model, inputs, initial):
        return _loss(model, inputs, initial, lengths, ups, time_major)

    def perturbed(e, inputs, model, initial):
        return _loss(model, jnp.concatenate([inputs, e], axis=-1), initial, lengths, ups, time_major)

    return nnx.grad(real, argnums=(0, 1, 2))(rnn, xs, carry), nnx.grad(perturbed, argnums=(0, 1))(eps, xs, probe, carry)


# The probe's extra adds change how XLA fuses the steps where it compiles
# them as one body (``unroll`` > 1; a 1-step scan, whose loop it drops):
# dL/dx through the probe is then off by rounding, not bitwise (measured:
# unroll 2, 0.11 eps in float32 over 65 steps and 0.3 eps in float64; one
# step, 0.55 eps in float32).  A probe running another computation (other
# options, another cell) is O(1) off; 16 eps tells them apart.
_PROBE_EPS = 16


def _cross_check(probe, real):
    """The probe's dL/dx against the real ``nnx.RNN``'s: within
    ``_PROBE_EPS`` eps of ``1 + |real|`` (bitwise where XLA keeps the loop)."""
    bound = _PROBE_EPS * float(np.finfo(real.dtype).eps)
    t = float(np.max(np.abs(probe - real) / (1 + np.abs(real)), initial=0.0))
    if not t <= bound:
        raise AssertionError(
            f"cross-check: dL/dx through the perturbed cell differs from the real nnx.RNN's by {t:.3g} "
            f"(allowed {bound:.3g})"
        )


def grad(meta, arrays):
    """``nnx.grad`` (``jax.grad`` over the module's ``nnx.Param``) through
    the real ``nnx.RNN`` of the real cell, called as ``run`` calls it, under
    ``nnx.jit`` (as a training step runs): the loss is ``sum(field *
    up:<field>)`` over ``h`` (y), ``final_h``, ``final_c`` (the returned
    carry); the reply has ``x``, ``h0``, ``c0`` (when given) and
    ``w:<path>`` (the cell's ``nnx.state`` paths).  The per-step ``steps:h``
    and ``steps:c_carried`` (dL/d of the state the cell computes at step t,
    processing order, the padding's steps included; c's with that step's h
    held) come from the same cell wrapped in :class:`_PerturbedCell`, run by
    an ``nnx.RNN`` with the same options on ``x`` with the zero
    perturbations concatenated (flipped with it under ``reverse``: flax's
    own ``flip_sequences`` puts them back in processing order); that run's
    dL/dx must equal the real one's to rounding (:func:`_cross_check`;
    else the request fails).
    Every upstream field must be given in ``param_dtype``."""
    if meta.get("kind") not in CELLS:
        raise protocol.UserError(f"kind {meta.get('kind')!r}: this worker runs {sorted(CELLS)}")
    config = meta["config"]
    x = arrays["x"]
    features = int(x.shape[-1])
    rnn = _build(meta["kind"], config, features)
    _load(rnn.cell, arrays)
    ups = {k[3:]: jnp.asarray(v) for k, v in arrays.items() if k.startswith("up:")}
    unknown = sorted(set(ups) - set(_FIELDS))
    if unknown:
        raise protocol.UserError(f"grad: upstream field(s) {unknown}: nnx.RNN returns {list(_FIELDS)}")
    dtype = jnp.dtype(config.get("param_dtype", "float32"))
    time_major = bool(config.get("time_major"))
    xs, carry, lengths = _rnn_inputs(x, arrays, dtype, time_major)
    units = rnn.cell.hidden_features
    probe = nnx.RNN(_PerturbedCell(rnn.cell, features), **{k: config[k] for k in _RNN_KEYS if k in config})
    eps = jnp.zeros(xs.shape[:-1] + (2 * units,), dtype)
    _bounded_caches()
    protocol.mark("request")
    (d_rnn, d_x, d_carry), (d_eps, d_x_probe) = _differentiate(rnn, probe, xs, carry, lengths, ups, eps, time_major)
    d_x, d_eps = np.asarray(d_x), np.asarray(d_eps)
    protocol.mark("grad")
    _cross_check(np.asarray(d_x_probe), d_x)
    if time_major:
        d_x, d_eps = np.swapaxes(d_x, 0, 1), np.swapaxes(d_eps, 0, 1)
    out = {"x": d_x}
    if carry is not None:
        out["c0"], out["h0"] = (np.asarray(g) for g in d_carry)
    for path, value in _paths(nnx.to_pure_dict(d_rnn)).items():
        out[f"w:{path.removeprefix('cell/')}"] = np.asarray(value)
    if config.get("reverse"):  # the scan read eps flipped within the lengths: processing order, as the trace
        d_eps = np.asarray(flip_sequences(d_eps, lengths, num_batch_dims=1, time_major=False))
    out["steps:h"], out["steps:c_carried"] = d_eps[..., :units], d_eps[..., units:]
    return {}, {k: np.ascontiguousarray(v) for k, v in out.items()}


def hello(meta, arrays):
    import flax
    import jaxlib

    info = provenance.base()
    info.update(jax=jax.__version__, jaxlib=jaxlib.__version__, flax=flax.__version__, oracle="flax")
    return info, {}


def run(meta, arrays):
    if meta.get("kind") not in CELLS:
        raise protocol.UserError(f"kind {meta.get('kind')!r}: this worker runs {sorted(CELLS)}")
    _bounded_caches()
    protocol.mark("request")
    out = forward(meta, arrays)
    protocol.mark("run")
    if meta.get("cross_check"):
        again = forward(meta, arrays, jit=True)
        for name, value in out.items():
            if not np.array_equal(value, again[name], equal_nan=True):
                raise AssertionError(f"cross-check: {name} differs between nnx.RNN called eagerly and under nnx.jit")
    return {}, out


def shapes(meta, arrays):
    """The cell's own ``nnx.state`` paths and shapes for a config and ``features``."""
    cell = _build(meta["kind"], meta["config"], int(meta["features"])).cell
    own = _paths(nnx.to_pure_dict(nnx.state(cell, nnx.Param)))
    return {"shapes": {k: list(np.shape(v)) for k, v in own.items()}}, {}


def read_params(meta, arrays):
    """A Flax checkpoint's tree, flattened: ``{path: array}`` and what it was."""
    path = meta["path"]
    if os.path.isdir(path):
        import orbax.checkpoint as ocp

        try:
            tree = ocp.PyTreeCheckpointer().restore(os.path.abspath(path))
        except Exception as exc:  # noqa: BLE001 - a directory orbax cannot read is the user's input
            raise protocol.UserError(f"orbax cannot restore {path}: {str(exc).splitlines()[0][:300]}") from None
        what = "orbax checkpoint"
    else:
        from flax import serialization

        with open(path, "rb") as f:
            data = f.read()
        try:
            tree = serialization.msgpack_restore(data)
        except Exception as exc:  # noqa: BLE001
            raise protocol.UserError(f"{path} is not a msgpack'd Flax tree: {str(exc).splitlines()[0][:300]}") from None
        what = "msgpack'd Flax tree"
    if not isinstance(tree, dict):
        raise protocol.UserError(f"{path} holds a {type(tree).__name__}, not a tree of parameters")
    flat = {}
    for key, value in _paths(tree).items():
        try:
            value = np.asarray(value)
        except (TypeError, ValueError):  # an rng key and other non-numbers: not parameters
            continue
        if value.dtype.kind == "f":
            flat[f"p:{key}"] = value
    return {"format": what}, flat


def _nnx_model(meta, arrays):
    model = _build(meta["kind"], meta["config"], int(meta["features"]))
    _load(model.cell, arrays)
    return model


def save_checkpoint(meta, arrays):
    """Write a checkpoint as a user would (for the tests of ``lstm-ref check``):
    ``msgpack``: ``flax.serialization.to_bytes`` of ``nnx.to_pure_dict`` of the
    ``nnx.RNN``'s parameters (``linen=True``: linen's ``{"params": ...}``
    tree, per-gate layers named ``ii``, ``if``, ...); ``orbax``: an
    ``orbax.checkpoint.StandardCheckpointer`` saving ``nnx.state(rnn)``."""
    from flax import serialization

    model = _nnx_model(meta, arrays)
    path = meta["path"]
    if meta["format"] == "orbax":
        import orbax.checkpoint as ocp

        checkpointer = ocp.StandardCheckpointer()
        checkpointer.save(os.path.abspath(path), nnx.state(model))
        checkpointer.wait_until_finished()
        return {}, {}
    tree = nnx.to_pure_dict(nnx.state(model, nnx.Param))
    if meta.get("linen"):
        tree = {"params": {("if" if k == "if_" else k): v for k, v in tree["cell"].items()}}
    for drop in meta.get("drop", ()):  # a tree with a parameter missing
        node = tree
        *parents, leaf = drop.split("/")
        for part in parents:
            node = node[part]
        del node[leaf]
    with open(path, "wb") as f:
        f.write(serialization.to_bytes(tree))
    return {}, {}


def linen(meta, arrays):
    """The same weights in linen's ``LSTMCell`` or ``OptimizedLSTMCell``
    (``meta["cell"]``) under ``flax.linen.RNN``: its parameters are the nnx
    LSTMCell's, ``if_`` named ``if`` (both linen cells name them per gate);
    ``extra``: more parameters given to ``apply`` (linen ignores unused
    ones).  Replies as ``run``."""
    import flax.linen as nn

    config = meta["config"]
    x = jnp.asarray(arrays["x"], jnp.dtype(config.get("param_dtype", "float32")))
    cell = getattr(nn, meta["cell"])(
        features=config["hidden_features"],
        gate_fn=_function(config.get("gate_fn", "sigmoid"), "gate_fn"),
        activation_fn=_function(config.get("activation_fn", "tanh"), "activation_fn"),
        param_dtype=jnp.dtype(config.get("param_dtype", "float32")),
    )
    order = {"reverse": config.get("reverse", False), "keep_order": config.get("keep_order", False)}
    rnn = nn.RNN(cell, return_carry=True, **order)
    params = {}
    for key, value in arrays.items():
        if key.startswith(("w:", "extra:")):
            layer, leaf = key.split(":", 1)[1].split("/")
            params.setdefault("if" if layer == "if_" else layer, {})[leaf] = jnp.asarray(value, x.dtype)
    lengths = None
    if "mask" in arrays:
        lengths = jnp.asarray(protocol.sequence_lengths(arrays["mask"]))
    carry = None if "h0" not in arrays else (jnp.asarray(arrays["c0"], x.dtype), jnp.asarray(arrays["h0"], x.dtype))
    (c, h), y = rnn.apply({"params": {"cell": params}}, x, initial_carry=carry, seq_lengths=lengths)
    return {}, {"h": np.asarray(y), "final_h": np.asarray(h), "final_c": np.asarray(c)}


HANDLERS = {
    "hello": hello,
    "run": run,
    "grad": grad,
    "shapes": shapes,
    "read_params": read_params,
    "save_checkpoint": save_checkpoint,
    "linen": linen,
}

if __name__ == "__main__":
    protocol.serve(HANDLERS)
