"""Oracle worker for ``torch.nn.LSTM`` and ``torch.nn.LSTMCell`` (torch 2.13,
CPU, ``eval()``), in ``.venv-torch``.

A request is a :class:`lstm_ref.case.Case` on the wire: the module is built
from the config (``dtype`` as a name), its ``state_dict`` loaded from the
``w:<name>`` arrays, and run on x batch-major (transposed when
``batch_first`` is False).  A mask is a right-padded ``PackedSequence``
(``pack_padded_sequence(..., enforce_sorted=False)`` then
``pad_packed_sequence(total_length=T)``).  With ``cross_check`` the module
is run again with the other ``batch_first`` (the same numbers in the other
layout) and both runs must agree bitwise.  An ``LSTMCell`` is stepped over
x by a Python loop, ``h, c = cell(x[:, t], (h, c))``, as a user steps it;
with ``cross_check`` the module is stepped again as TorchScript
(``torch.jit.script``, what a ``.jit`` archive runs) and must agree
bitwise.  (A row stepped alone is *not* bitwise the batch's row: torch
2.13's float32 GEMM sums a batch of 1 in another order, 1 ulp apart,
measured; the reference follows the batch it is given.)

A user's ``.pt`` file (``lstm-ref check``/``convert``) is read and run by the
ops of ``torch_artifacts.py``: ``artifact_lstms``, ``artifact_run``,
``save_state_dict``.  Its ``nn.LSTM`` s and ``nn.LSTMCell`` s both: a
TorchScript archive's cell is stepped by its own scripted (or traced)
code there; a state_dict's cell, which has no code, by ``run`` here
(``run_cell``, when the case's kind is ``torch.nn.LSTMCell``).
"""

import numpy as np
import torch  # noqa: E402

from lstm_ref.harness.oracles import (
    memory,
    protocol,
    provenance,
    torch_artifacts,  # noqa: E402
)

torch.set_num_threads(1)  # two workers share two cores; one thread is also reproducible

_DTYPES = {None: torch.float32, "float32": torch.float32, "float64": torch.float64}


def _build(config):
    kwargs = {k: v for k, v in config.items() if k not in ("dtype", "device")}
    kwargs.setdefault("batch_first", False)
    return torch.nn.LSTM(**kwargs, dtype=_DTYPES[config.get("dtype")]).eval()


def _build_cell(config):
    kwargs = {k: v for k, v in config.items() if k not in ("dtype", "device")}
    return torch.nn.LSTMCell(**kwargs, dtype=_DTYPES[config.get("dtype")]).eval()


_module = memory.LayerCache(_build, size=32)
_cell = memory.LayerCache(_build_cell, size=32)
CELL = "torch.nn.LSTMCell"


def step_cell(cell, x, h0=None, c0=None):
    """Step ``cell`` over batch-major numpy ``x``: ``(h, c)`` at every step, batch-major."""
    return _steps(cell, x, None if h0 is None else (h0, c0), axis=1)


def _steps(cell, x, state, axis):
    dtype = next(cell.parameters()).dtype
    xs = torch.from_numpy(np.ascontiguousarray(x)).to(dtype)
    state = None if state is None else tuple(torch.from_numpy(s).to(dtype) for s in state)
    hs, cs = [], []
    with torch.no_grad():
        for t in range(xs.shape[axis]):
            state = cell(xs.select(axis, t), state)
            hs.append(state[0].numpy().copy())
            cs.append(state[1].numpy().copy())
    return np.stack(hs, axis=axis), np.stack(cs, axis=axis)


def run_cell(meta, arrays):
    cell = _cell(meta["config"])
    try:
        _load(cell, arrays)
    except RuntimeError as exc:
        raise protocol.UserError(f"torch refused the weights: {str(exc).splitlines()[0]}") from None
    protocol.mark("request")
    h, c = step_cell(cell, arrays["x"], arrays.get("h0"), arrays.get("c0"))
    protocol.mark("run")
    if meta.get("cross_check"):
        scripted = step_cell(torch.jit.script(cell), arrays["x"], arrays.get("h0"), arrays.get("c0"))
        for name, a, b in zip(("h", "c"), (h, c), scripted):
            if not np.array_equal(a, b, equal_nan=True):
                raise AssertionError(f"cross-check: {name} differs between the module and its TorchScript")
    return {}, {"h": h, "c": c, "final_h": h[:, -1], "final_c": c[:, -1]}


def _load(module, arrays):
    state = {k[2:]: torch.from_numpy(np.ascontiguousarray(v)) for k, v in arrays.items() if k.startswith("w:")}
    dtype = next(module.parameters()).dtype
    module.load_state_dict({k: v.to(dtype) for k, v in state.items()}, strict=True)


def forward(module, x, mask=None, h0=None, c0=None, batch_first=None):
    """Run ``module`` on batch-major numpy ``x``: ``(h, final_h, final_c)``,
    h batch-major, the states stacked as torch returns them."""
    dtype = next(module.parameters()).dtype
    batch_first = module.batch_first if batch_first is None else batch_first
    saved, module.batch_first = module.batch_first, batch_first
    try:
        xs = torch.from_numpy(np.ascontiguousarray(x)).to(dtype)
        if not batch_first:
            xs = xs.transpose(0, 1)
        state = None if h0 is None else (torch.from_numpy(h0).to(dtype), torch.from_numpy(c0).to(dtype))
        with torch.no_grad():
            if mask is not None:
                lengths = torch.from_numpy(protocol.sequence_lengths(mask).astype(np.int64))
                packed = torch.nn.utils.rnn.pack_padded_sequence(
                    xs, lengths, batch_first=batch_first, enforce_sorted=False
                )
                out, (hn, cn) = module(packed, state)
                out, _ = torch.nn.utils.rnn.pad_packed_sequence(out, batch_first=batch_first, total_length=x.shape[1])
            else:
                out, (hn, cn) = module(xs, state)
        if not batch_first:
            out = out.transpose(0, 1)
        return out.numpy().copy(), hn.numpy().copy(), cn.numpy().copy()
    finally:
        module.batch_first = saved


def hello(meta, arrays):
    info = provenance.base()
    info.update(torch=torch.__version__, threads=torch.get_num_threads(), oracle="torch")
    return info, {}


def run(meta, arrays):
    if meta.get("kind") == CELL:
        return run_cell(meta, arrays)
    module = _module(meta["config"])
    try:
        _load(module, arrays)
    except RuntimeError as exc:
        raise protocol.UserError(f"torch refused the weights: {str(exc).splitlines()[0]}") from None
    args = (arrays["x"], arrays.get("mask"), arrays.get("h0"), arrays.get("c0"))
    protocol.mark("request")
    h, final_h, final_c = forward(module, *args)
    protocol.mark("run")
    if meta.get("cross_check"):
        other = forward(module, *args, batch_first=not module.batch_first)
        for name, a, b in zip(("h", "final_h", "final_c"), (h, final_h, final_c), other):
            if not np.array_equal(a, b, equal_nan=True):
                raise AssertionError(f"cross-check: {name} differs between batch_first=True and False")
    return {}, {"h": h, "final_h": final_h, "final_c": final_c}


def shapes(meta, arrays):
    """The module's own ``state_dict`` names and shapes for a config."""
    module = (_cell if meta.get("kind") == CELL else _module)(meta["config"])
    return {"shapes": {k: list(v.shape) for k, v in module.state_dict().items()}}, {}


def grad(meta, arrays):
    """``torch.autograd`` on the module: the loss is ``sum(field *
    up:<field>)``; the reply has ``x``, ``h0``, ``c0`` (when given) and
    ``w:<name>`` for every ``state_dict`` entry.  ``nn.LSTM``: fields
    ``h`` (the output, padded back with ``pad_packed_sequence`` under a
    mask), ``final_h``, ``final_c``; its per-step states are inside the
    fused ``torch.lstm`` and are not returned.  ``nn.LSTMCell``, stepped
    by a Python loop as in ``run``: also ``c``, and ``steps:h`` /
    ``steps:c``, dL/dh_t and dL/dc_t of every step's ``(h, c)`` (taken
    with ``autograd.grad`` on those non-leaf tensors)."""
    cell_kind = meta.get("kind") == CELL
    module = (_cell if cell_kind else _module)(meta["config"])
    try:
        _load(module, arrays)
    except RuntimeError as exc:
        raise protocol.UserError(f"torch refused the weights: {str(exc).splitlines()[0]}") from None
    dtype = next(module.parameters()).dtype
    tensor = lambda a: torch.from_numpy(np.ascontiguousarray(a)).to(dtype)  # noqa: E731
    x = tensor(arrays["x"]).requires_grad_(True)
    state = None
    if "h0" in arrays:
        state = (tensor(arrays["h0"]).requires_grad_(True), tensor(arrays["c0"]).requires_grad_(True))
    ups = {k[3:]: tensor(v) for k, v in arrays.items() if k.startswith("up:")}
    params = dict(module.named_parameters())
    protocol.mark("request")
    steps = []
    with torch.enable_grad():
        if cell_kind:
            hc = state
            for t in range(x.shape[1]):
                hc = module(x[:, t], hc)
                steps.append(hc)
            fields = {
                "h": torch.stack([h for h, _ in steps], 1),
                "c": torch.stack([c for _, c in steps], 1),
                "final_h": steps[-1][0],
                "final_c": steps[-1][1],
            }
        else:
            xs = x if module.batch_first else x.transpose(0, 1)
            if "mask" in arrays:
                lengths = torch.from_numpy(protocol.sequence_lengths(arrays["mask"]).astype(np.int64))
                packed = torch.nn.utils.rnn.pack_padded_sequence(
                    xs, lengths, batch_first=module.batch_first, enforce_sorted=False
                )
                out, (hn, cn) = module(packed, state)
                out, _ = torch.nn.utils.rnn.pad_packed_sequence(
                    out, batch_first=module.batch_first, total_length=x.shape[1]
                )
            else:
                out, (hn, cn) = module(xs, state)
            fields = {"h": out if module.batch_first else out.transpose(0, 1), "final_h": hn, "final_c": cn}
        unknown = sorted(set(ups) - set(fields))
        if unknown:
            raise protocol.UserError(f"grad: upstream field(s) {unknown}; this module gives {sorted(fields)}")
        loss = sum((fields[k] * v).sum() for k, v in ups.items())
        inputs = [x, *(state or ()), *params.values()]
        flat_steps = [s for hc in steps for s in hc]
        grads = torch.autograd.grad(loss, inputs + flat_steps, allow_unused=True)
    protocol.mark("grad")

    def numpy(g, like):
        return (torch.zeros_like(like) if g is None else g).detach().numpy().copy()

    names = ["x", *(["h0", "c0"] if state else []), *(f"w:{n}" for n in params)]
    out = {n: numpy(g, t) for n, g, t in zip(names, grads, inputs)}
    if steps:
        rest = [numpy(g, t) for g, t in zip(grads[len(inputs) :], flat_steps)]
        out["steps:h"], out["steps:c"] = np.stack(rest[0::2], 1), np.stack(rest[1::2], 1)
    return {}, out


HANDLERS = {"hello": hello, "run": run, "shapes": shapes, "grad": grad}
# A user's .pt file (lstm-ref check / convert): torch_artifacts.py
HANDLERS.update(torch_artifacts.HANDLERS)

if __name__ == "__main__":
    protocol.serve(HANDLERS)
