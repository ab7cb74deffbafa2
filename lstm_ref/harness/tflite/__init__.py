"""The TFLite deployment target: Keras LSTMs converted by TF's
``TFLiteConverter`` (``converter.py`` runs ``convert_one.py`` in a
subprocess) in five modes (``modes.py``), run by LiteRT (the ``litert``
oracle, ``.venv-litert``) and compared with the reference step by step
(``target.py``: ``tflite_rows``, ``sweep_rows``, ...).  Importing this
package loads NumPy only, and not the pipeline: the kind records name
``TARGET`` (``spec.py``)."""

from .modes import MODES, Mode, mode_of
from .spec import TARGET

__all__ = ["MODES", "Mode", "mode_of", "TARGET"]

_PIPELINE = ("TFLiteRow", "error_growth", "markdown_table", "plot_growth", "sweep_rows", "tflite_rows")


def __getattr__(name):
    """The pipeline's names (``target.py``), loaded on first use, as this package exported them before."""
    if name in _PIPELINE:
        from . import target

        return getattr(target, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
