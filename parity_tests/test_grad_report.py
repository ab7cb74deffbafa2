"""``make report``'s gradient section (``lstm_ref/harness/grad_report.py``):
the T=200 per-step dL/dc_t against TF, and the section's rows."""

import numpy as np
import pytest

from lstm_ref.harness import grad_report

pytestmark = pytest.mark.kinds("keras3")


@pytest.fixture(scope="module")
def longs(oracle_pool):
    return [grad_report.long_sequence(oracle_pool, bias) for bias in (0.0, 3.0)]


def test_the_long_sequence_agrees_with_tf_at_every_step(longs):
    vanish, carry = longs
    for run in longs:
        assert run.passed and run.ratio.shape == (grad_report.LONG,), run.ratio.max()
        # the last step's carried dL/dc is 0 (the loss reads h_T); every earlier step carries some
        assert run.ref[-1] == 0 and (run.ref[:-1] > 0).all()
    # forget bias 0: the gradient vanishes back in time; +3: it is carried 10^20 times further
    assert vanish.ref[0] < 1e-20 * vanish.ref[-2]
    assert carry.ref[0] > 1e20 * vanish.ref[0]


def test_a_gradient_cut_short_in_time_is_seen_at_the_early_steps(oracle_pool, longs, monkeypatch):
    """The per-step ratio can fail: the reference's dL/dc_t zeroed before
    step 150 (a truncated BPTT) leaves TF's carried gradient unexplained there."""
    from lstm_ref.reference import Reference

    real = Reference.grad

    def truncated(self, *args, **kwargs):  # in the reference itself: its own rounding spread sees it too
        g = real(self, *args, **kwargs)
        g.steps["c_carried"] = np.array(g.steps["c_carried"])
        g.steps["c_carried"][:, :150] = 0
        return g

    monkeypatch.setattr(Reference, "grad", truncated)
    run = grad_report.long_sequence(oracle_pool, 3.0)
    assert not run.passed and run.ratio[:150].min() > 1 and run.ratio[150:-1].max() <= 1


def test_the_section_renders_every_kind_of_row(longs):
    rows = [
        grad_report.GradRow("a", "keras.layers.LSTM", "float32", 1e-7, 0.5, "x", {"x": 0.5}),
        grad_report.GradRow("b", "keras.layers.LSTM", "float32", 1e-7, 2.0, "w:kernel", {"w:kernel": 2.0}),
        grad_report.GradRow("c", "onnx.LSTM", "float32", 1e-7, refused="the converter refuses peepholes"),
        grad_report.GradRow("d", "torch.nn.LSTM", "float32", 1e-7, error="the worker crashed"),
    ]
    assert [r.passed for r in rows] == [True, False, True, False]
    text = "\n".join(grad_report.markdown(rows, longs))
    assert "1/4 sweep cases within their gradient bound, 1 not covered" in text
    assert "not covered: the converter refuses peepholes" in text and "ERROR: the worker crashed" in text
    assert "<img alt='dL/dc_t over T=200'" in grad_report.html_section(rows, longs)
