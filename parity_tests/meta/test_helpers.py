"""The test helpers themselves: strategies draw what they say, and every
mutant still applies to the current source (so `make mutants` cannot rot)."""

import numpy as np
import pytest
from hypothesis import given, settings

import lstm_ref
from parity_tests import mutants
from parity_tests import strategies as hh


@pytest.mark.parametrize("name, tests, edits", mutants.MUTANTS, ids=[m[0] for m in mutants.MUTANTS])
def test_mutant_applies_exactly_once(name, tests, edits):
    for rel, old, new in edits:
        assert old != new
        assert (mutants.ROOT / rel).read_text().count(old) == 1, f"{name}: edit no longer applies to {rel}"


def test_there_are_at_least_15_mutants():
    assert len(mutants.MUTANTS) >= 15


def test_per_gate_blocks_differ():
    w = hh.per_gate_array(np.random.default_rng(0), (3, 8), [0.1, -1.0, 2.0, 0.5], "float32")
    blocks = np.split(w, 4, axis=-1)
    scales = [np.abs(b).mean() for b in blocks]
    assert len({round(s, 3) for s in scales}) == 4


@pytest.mark.parametrize("pattern", ["right", "left", "holes", "fully_masked_row", "random"])
def test_mask_patterns_are_what_they_say(pattern):
    rng = np.random.default_rng(1)
    for _ in range(20):
        mask = hh.make_mask(rng, pattern, 4, 7)
        steps_on = mask.astype(int)
        if pattern == "right":  # True... then False...
            assert (np.diff(steps_on, axis=1) <= 0).all() and mask[:, 0].all()
        elif pattern == "left":
            assert (np.diff(steps_on, axis=1) >= 0).all() and mask[:, -1].all()
        elif pattern == "holes":
            assert mask[:, 0].all()
        elif pattern == "fully_masked_row":
            assert (~mask).all(axis=1).any()
    assert hh.make_mask(rng, "none", 2, 3) is None


@settings(max_examples=30)
@given(example=hh.keras_lstm_examples())
def test_keras_examples_are_valid_calls(example):
    config, x, weights, h0, c0, mask = example
    ref = lstm_ref.from_config("keras.layers.LSTM", config)
    assert x.ndim == 3 and ref.weight_shapes(x.shape[-1]) == {k: v.shape for k, v in weights.items()}
    assert (h0 is None) == (c0 is None)
    assert mask is None or mask.shape == x.shape[:2]


@settings(max_examples=30)
@given(example=hh.tf1_examples())
def test_tf1_masks_are_right_padded(example):
    kind, config, x, weights, h0, c0, mask = example
    lstm_ref.from_config(kind, config).run(x, weights, h0=h0, c0=c0, mask=mask)  # no InputError
    if mask is not None:
        assert (np.diff(mask.astype(int), axis=1) <= 0).all()
