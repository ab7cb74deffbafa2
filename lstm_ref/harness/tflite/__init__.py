"""The TFLite deployment target: Keras LSTMs converted by TF's
``TFLiteConverter`` (``converter.py`` runs ``convert_one.py`` in a
subprocess) in five modes (``modes.py``), run by LiteRT (the ``litert``
oracle, ``.venv-litert``) and compared with the reference step by step
(``target.py``).  Importing this package loads NumPy only."""

from .modes import MODES, Mode, mode_of
from .target import TARGET, TFLiteRow, error_growth, markdown_table, plot_growth, sweep_rows, tflite_rows

__all__ = ["MODES", "Mode", "mode_of", "TARGET", "TFLiteRow", "error_growth", "markdown_table", "plot_growth",
           "sweep_rows", "tflite_rows"]
