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
