"""``lstm-ref diagnose``: the command line of :mod:`lstm_ref.harness.diagnose`.

Two ways in:

* ``--source MODEL --target ARTIFACT``: both files are read as ``check``
  reads them (:func:`artifacts.read_lstms`) and paired as ``check --source``
  pairs them (:func:`artifacts.pair_lstms`: a PyTorch LSTM of L layers
  against the L ONNX nodes ``torch.onnx.export`` writes).  The target can be run again, so the case is
  the designed probe (:func:`diagnose.probe`, on the source's own weights):
  the source, converted correctly (:func:`lstm_ref.convert.convert`), is the
  truth; the target runs the same inputs; the target kind's catalogue is
  searched.
* ``--kind K --config JSON --weights W.npz --observed OUT.npz [--input X.npz]``:
  what a target computed, when it cannot be run from here.  Without
  ``--input`` the observed outputs must come from the probe, which
  ``--write-probe FILE`` writes for that kind, config and weights.
* the same with ``--grads G.npz --upstream UP.npz``: the target's gradients
  of ``sum(field * upstream[field])`` (keys ``x``, ``h0``, ``c0``,
  ``w:<name>``, ``steps:*``, as ``check --grad`` keys them) are searched for
  the backward-only faults (:func:`diagnose.diagnose_grad`: truncated BPTT,
  c detached, the gradient clipped per step, the bias gradient doubled);
  ``--observed`` is then optional and, when given, the forward is checked
  first.

When no catalogue fault explains the target, the fault is localised
(:mod:`lstm_ref.harness.localise`): where the target first leaves
tolerance, and the smallest correction to the reference's weights or gates
that brings it within tolerance, with its fix in the kind's weight names
(``--no-localise`` skips it).

Exit 0 when one explanation within tolerance is found (a catalogue fault, a
pair, or a correction; or the target is within tolerance), 1 when none is
(or several are), 2 on bad input.
"""

import json

import numpy as np

from ...case import Case
from ...convert import ConversionError, convert
from ...errors import InputError
from ...platform import PROFILES, current
from ...reference import from_config
from .. import artifacts, check
from ..diagnose import AMBIGUOUS, CORRECT, WITHIN, diagnose, diagnose_grad, mask_part, probe
from ..model_format import model_format
from ._common import UsageError, json_target, user_path

NAME = "diagnose"

EPILOG = """exit codes:
  0  one known fault (or pair of faults) explains the target, or one small correction found by
     localisation does, or the target is within tolerance
  1  none does, or several compute the same on the probe (ambiguous): the candidates are listed,
     and where no catalogue fault explains it, the tensor and gate the fits agree on (or "not sure")
  2  usage or input error: a short message names the culprit (--debug shows the traceback)
  3  a framework worker crashed or hung (its stderr is shown under --debug), or lstm-ref failed (a bug)
"""
NAMES_SHOWN = 2  # equivalent faults named per candidate line; the rest counted (all in --json)


def add_parser(sub):
    dia = sub.add_parser(
        "diagnose",
        help="name the known fault (gate order, bias, reversed output, ...) of a port that disagrees",
        description="Search the kind's fault catalogue (every fault, then every pair) for the one that makes the "
        "reference compute what the target computed, and say how to fix it.  When none does, localise the fault: "
        "where the target first leaves tolerance, and the smallest correction to one tensor, gate or unit "
        "(a scale, an offset, a swap, another activation, ...) that explains it.",
        epilog=EPILOG,
    )
    dia.add_argument("--source", metavar="MODEL", help="the model the target was made from (.keras/.h5/.pt/.onnx)")
    dia.add_argument("--target", metavar="ARTIFACT", help="the port to diagnose (.keras/.h5/.pt/.onnx)")
    dia.add_argument("--kind", help="without files: the kind, e.g. keras.layers.LSTM (lstm_ref.KINDS)")
    dia.add_argument("--config", help="without files: the kind's constructor kwargs as JSON")
    dia.add_argument("--weights", metavar="W.npz", help="without files: the weights, by the kind's names")
    dia.add_argument("--observed", metavar="OUT.npz", help="what the target computed: any of h, c, final_h, final_c")
    dia.add_argument(
        "--input",
        metavar="X.npz",
        help="the inputs it computed them on: x (and mask, h0, c0); default: the probe (--write-probe)",
    )
    dia.add_argument(
        "--write-probe",
        metavar="FILE.npz",
        help="write the probe inputs for --kind/--config/--weights (x, mask, h0, c0) to run the target on, and stop",
    )
    dia.add_argument(
        "--grads",
        metavar="G.npz",
        help="the target's gradients (x, h0, c0, w:<name>, steps:*): search the backward-only faults",
    )
    dia.add_argument(
        "--upstream",
        metavar="UP.npz",
        help="with --grads: dL/d each output field (h, final_h, ...; or up:<field>) the gradients were taken of",
    )
    dia.add_argument("--no-pairs", action="store_true", help="search single faults only")
    dia.add_argument(
        "--no-localise",
        action="store_true",
        help="when no catalogue fault explains the target, stop there (do not localise the fault)",
    )
    dia.add_argument(
        "--no-mask",
        action="store_true",
        help="probe without a mask (for a port that takes none or "
        'ignores it by design: otherwise every answer is "mask ignored + ...")',
    )
    dia.add_argument("--json", metavar="PATH", help="also write the diagnosis as JSON to PATH")
    dia.add_argument(
        "--platform",
        metavar="PROFILE",
        help="the platform profile whose numbers the reference "
        "reproduces (default: this machine's, or $LSTM_PARITY_PLATFORM): " + ", ".join(PROFILES),
    )
    dia.add_argument("--debug", action="store_true", help="show tracebacks and workers' stderr on errors")
    return dia


def run(args):
    args.json_path = json_target(args)
    files = args.source or args.target
    arrays = args.kind or args.config or args.weights or args.observed or args.input or args.write_probe or args.grads
    if bool(args.grads) != bool(args.upstream):
        raise UsageError("--grads and --upstream go together")
    if files and arrays:
        raise UsageError("give --source/--target, or --kind/--config/--weights with --observed (not both)")
    if files:
        if not (args.source and args.target):
            raise UsageError("--source and --target go together")
        results = _diagnose_files(
            user_path(args.source), user_path(args.target), not args.no_pairs, args.no_mask, not args.no_localise
        )
    else:
        if not (args.kind and args.config is not None and args.weights):
            raise UsageError("give --source MODEL --target ARTIFACT, or --kind, --config and --weights")
        case = _case_from_args(args)
        if args.write_probe:
            np.savez(user_path(args.write_probe), **{k: v for k, v in case.arrays().items() if not k.startswith("w:")})
            print(
                f"wrote the probe for {case.kind} to {args.write_probe}: run the target on x (mask, h0, c0), save "
                "its outputs (h, final_h, final_c, ...) as an .npz, and pass it as --observed"
            )
            return 0
        if args.grads:
            observed = _npz(user_path(args.observed), "--observed") if args.observed else None
            upstream = {
                k[3:] if k.startswith("up:") else k: v for k, v in _npz(user_path(args.upstream), "--upstream").items()
            }
            grads = _npz(user_path(args.grads), "--grads")
            try:
                diagnosis = diagnose_grad(case, upstream, grads, observed=observed)
            except KeyError as exc:  # the arrays differ from the reference's (grad_oracle.paired)
                raise InputError(f"--grads: {exc.args[0]}") from None
            return _print([(f"{case.kind} (gradients)", diagnosis, None)], args.json_path)
        if not args.observed:
            raise UsageError("--observed OUT.npz is required (what the target computed)")
        observed = _npz(user_path(args.observed), "--observed")
        results = [
            (f"{case.kind}", diagnose(case, observed, pairs=not args.no_pairs, localise=not args.no_localise), None)
        ]
    return _print(results, args.json_path)


def _npz(path, flag):
    if not path.is_file():
        raise InputError(f"{flag} {path}: no such file")
    try:
        with np.load(path, allow_pickle=False) as data:
            return {k: data[k] for k in data.files}
    except Exception as exc:  # noqa: BLE001 - not an npz: say so
        raise InputError(f"{flag} {path}: not a NumPy .npz file ({exc})") from None


def _case_from_args(args):

    try:
        config = json.loads(args.config)
    except json.JSONDecodeError as exc:
        raise InputError(f"--config: not JSON ({exc})") from None
    ref = from_config(args.kind, config)
    weights = {k[2:] if k.startswith("w:") else k: v for k, v in _npz(user_path(args.weights), "--weights").items()}
    features = _features(ref, weights)
    base = probe(args.kind, config, features, weights=weights, no_mask=args.no_mask)
    if args.input:
        if args.no_mask:
            raise UsageError(
                "--no-mask shapes the probe; with --input the inputs are yours: leave it out, or drop "
                "'mask' from the --input file"
            )
        given = _npz(user_path(args.input), "--input")
        if "x" not in given:
            raise InputError(f"--input {args.input}: holds no 'x' (it holds {sorted(given)})")
        base = Case(
            args.kind,
            config,
            given["x"],
            weights,
            given.get("mask"),
            **{k: v for k, v in given.items() if k in ("h0", "c0")},
        )
    base.run(ref)  # validate shapes now, naming the culprit
    return base


def _features(ref, weights):
    """The input width the weights imply (what the probe's x needs)."""
    for name in ("kernel", "weight_ih_l0", "W"):
        if name in weights:
            w = np.asarray(weights[name])
            if name == "kernel":
                return int(w.shape[0] - (ref.out_units if ref.kind.startswith("tf.") else 0))
            return int(w.shape[-1])
    raise InputError(f"--weights: cannot tell the input width from {sorted(weights)}")


def _diagnose_files(source_path, target_path, pairs, no_mask=False, localise=True):

    pool = check.open_pool()
    try:
        src_lstms = artifacts.read_lstms(source_path, model_format(source_path)[0], pool)[0]
        dst_lstms = artifacts.read_lstms(target_path, model_format(target_path)[0], pool)[0]
        matched = artifacts.pair_lstms(source_path, src_lstms, target_path, dst_lstms)  # check --source's pairing
        results = []
        for src, dst in matched:
            if src.parts:  # a Keras Bidirectional, or L layers, facing one module: not one LSTM's faults
                results.append(
                    (
                        f"{src.name} -> {dst.name}",
                        None,
                        (
                            f"{len(src.parts)} source LSTMs ({src.group}) against one target LSTM, and diagnose "
                            f"searches one LSTM's faults: compare them with lstm-ref check {target_path.name} "
                            f"--source {source_path.name}"
                        ),
                    )
                )
            else:
                results.append(_diagnose_pair(src, dst, pairs, no_mask, localise))
        if all(d is None for _, d, _ in results):
            raise InputError("; ".join(f"{name}: {reason}" for name, _, reason in results))
        return results
    finally:
        pool.close()


def _diagnose_pair(src, dst, pairs, no_mask=False, localise=True):
    """The truth is the source converted correctly; the target runs the probe."""

    if src.recorded is not None:  # a Keras layer: its kind, config and weights as the model holds them
        recorded = src.recorded["case"]
        kind, config, weights = recorded.kind, recorded.config, recorded.weights
    else:
        kind, config, weights = src.kind, src.config, src.weights
    base = probe(kind, config, src.features, weights=weights, no_mask=no_mask)
    if not dst.takes_mask or dst.kind == "onnx.LSTM" and "sequence_lens" not in dst.optional:
        base = base.replace(mask=None)
    if not dst.takes_state or dst.kind == "onnx.LSTM" and "initial_h" not in dst.optional:
        base = base.replace(h0=None, c0=None)
    try:
        truth = convert(base, dst.kind).case
    except ConversionError:  # e.g. a mask the target kind cannot express: probe without it
        base = base.replace(mask=None)
        truth = convert(base, dst.kind).case
    if callable(dst.runner):
        ported = Case(dst.kind, dst.config, truth.x, dst.weights, truth.mask, **truth.initial_state)
        observed = dst.runner(ported)
    else:
        raise InputError(f"{dst.name}: the target cannot be run ({dst.runner})")
    fields = [k for k in truth.reference().fields() if k in observed]
    return (
        f"{src.name} -> {dst.name}",
        diagnose(truth, observed, fields=fields, pairs=pairs, localise=localise),
        f"lstm-ref convert SOURCE --to {'torch' if dst.kind == 'torch.nn.LSTM' else 'onnx'} writes it correctly"
        if dst.kind in ("torch.nn.LSTM", "onnx.LSTM") and dst.kind != kind
        else None,
    )


def _names(c):
    """A candidate's name and, briefly, the faults that compute the same."""
    if not c.equivalent:
        return c.name
    more = len(c.equivalent) - NAMES_SHOWN
    return f"{c.name} (= {', '.join(c.equivalent[:NAMES_SHOWN])}{f', and {more} more' if more > 0 else ''})"


def _fix_lines(best):
    """The fix of a fault, or of each fault of a pair (one without a fix
    of its own: undo it), and the residual once all of them are applied."""
    parts = best.parts or [(best.name, best.fix)]
    fixes = [fix or f'undo "{name}"' for name, fix in parts]
    lines = (
        [f"  fix: {fixes[0]}"]
        if len(fixes) == 1
        else [f"  fix {i} of {len(fixes)} ({name}): {fix}" for i, ((name, _), fix) in enumerate(zip(parts, fixes), 1)]
    )
    after = "it" if len(fixes) == 1 else f"all {len(fixes)}"
    return lines + [f"  residual after {after}: {best.ratio:.3g}x tolerance (max |d| {best.max_abs:.3g})"]


def _mask_line(c):
    """When the mask is what made the difference: the target ignores (or
    misreads) it, and on unmasked input computes the rest."""
    part = mask_part(c)
    if part is None:
        return None
    rest = [name for name, _ in c.parts if name != part]
    unmasked = f"computes {rest[0]}" if rest else "computes the reference"
    return (
        f'  the mask made the difference: the target\'s fault with a mask is "{part}"; on unmasked input it '
        f"{unmasked} (--no-mask probes without one)"
    )


def _print(results, json_path):
    out = []
    for name, d, converter in results:
        if d is None:  # a pair diagnose does not search (its reason in place of the converter line)
            print(f"{name}: not diagnosed: {converter}")
            out.append({"pair": name, "skipped": converter})
            continue
        details = [f"compared {', '.join(d.fields)}"] + ([d.note] if d.note else [])
        print(
            f"{name}: {d.verdict} (the correct reference is {d.truth_ratio:.3g}x tolerance away, "
            f"max |d| {d.truth_max_abs:.3g}; {'; '.join(details)})"
        )
        best = d.best()
        lines = []
        if d.verdict == WITHIN:
            lines.append(f"  the target computes the reference with: {best.name}")
            lines += _fix_lines(best)
            lines.append(_mask_line(best))
            if converter:
                lines.append(f"  {converter}")
        elif d.verdict == AMBIGUOUS:
            within = [c for c in d.candidates if c.ratio <= 1]
            names = [n for c in within for n in [c.name, *c.equivalent]]
            lines.append(f"  {len(names)} faults explain it and the probe cannot tell them apart: {'; '.join(names)}")
            if any(c.equivalent for c in within):
                lines.append(
                    "  (faults in one group compute exactly the same trace on these weights and inputs"
                    + (
                        ": with a bias that is 1 on the forget gate and 0 elsewhere (an untrained Keras LSTM's), "
                        "adding 1 to the forget gate and counting the bias twice are the same; diagnose a trained "
                        "model, or one whose bias is not [0, 1, 0, 0], to separate them)"
                        if any(
                            "forget bias" in " ".join([c.name, *c.equivalent])
                            and "bias counted twice" in " ".join([c.name, *c.equivalent])
                            for c in within
                        )
                        else ")"
                    )
                )
            for c in within:
                lines.append(f"  within: {_names(c)}: {c.ratio:.3g}x tolerance")
                lines.append(_mask_line(c))
        elif d.verdict != CORRECT:
            if d.localisation is not None:
                lines += d.localisation.lines()
            if d.localisation is None or not d.localisation.named:
                for c in d.candidates[:5]:
                    lines.append(f"  nearest: {_names(c)}: {c.ratio:.3g}x tolerance")
        for line in lines:
            if line:
                print(line)
        out.append(
            {
                "pair": name,
                **d.as_json(),
                "converter": converter,
                "mask_made_the_difference": next(
                    (mask_part(c) for c in d.candidates if c.ratio <= 1 and mask_part(c)), None
                )
                if d.candidates
                else None,
            }
        )
    if json_path:
        json_path.write_text(json.dumps({"platform": str(current()), "results": out}, indent=1, default=float))
    ok = all(d.explained for _, d, _ in results if d is not None)
    return 0 if ok else 1
