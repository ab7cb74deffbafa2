"""The test helpers themselves: masks and weights are what they say, and
every mutant still applies to the current source (so `make mutants` cannot
rot).  The strategies are checked per kind in ``test_records.py``."""

import numpy as np
import pytest

from lstm_ref.case import MASK_PATTERNS, make_mask, per_gate
from tools import mutants


@pytest.mark.parametrize("name, tests, edits", mutants.MUTANTS, ids=[m[0] for m in mutants.MUTANTS])
def test_mutant_applies_exactly_once(name, tests, edits):
    for rel, old, new in edits:
        assert old != new
        assert (mutants.ROOT / rel).read_text().count(old) == 1, f"{name}: edit no longer applies to {rel}"


def test_there_are_at_least_15_mutants():
    assert len(mutants.MUTANTS) >= 15


def test_per_gate_blocks_differ():
    w = per_gate(np.random.default_rng(0), (3, 8), [0.1, -1.0, 2.0, 0.5], "float32")
    blocks = np.split(w, 4, axis=-1)
    scales = [np.abs(b).mean() for b in blocks]
    assert len({round(s, 3) for s in scales}) == 4


@pytest.mark.parametrize("pattern", MASK_PATTERNS[1:])
def test_mask_patterns_are_what_they_say(pattern):
    rng = np.random.default_rng(1)
    for _ in range(20):
        mask = make_mask(rng, pattern, 4, 7)
        steps_on = mask.astype(int)
        if pattern == "right":  # True... then False...
            assert (np.diff(steps_on, axis=1) <= 0).all() and mask[:, 0].all()
        elif pattern == "left":
            assert (np.diff(steps_on, axis=1) >= 0).all() and mask[:, -1].all()
        elif pattern == "holes":
            assert mask[:, 0].all()
        elif pattern == "fully_masked_row":
            assert (~mask).all(axis=1).any()
    assert make_mask(rng, "none", 2, 3) is None


def test_a_cross_framework_cell_says_what_the_converter_refused():
    """The report's refusal reason keeps its subject ("peepholes: ..."), and
    drops only a kind's prefix from other messages."""
    from lstm_ref.convert import ConversionError
    from lstm_ref.harness.cross_framework import _reason

    refused = ConversionError("cannot convert peepholes to torch.nn.LSTMCell: torch.nn.LSTMCell has none")
    assert _reason(refused) == "peepholes: torch.nn.LSTMCell has none"
    assert _reason(ConversionError("onnx.LSTM: float64 is not supported")) == "float64 is not supported"
