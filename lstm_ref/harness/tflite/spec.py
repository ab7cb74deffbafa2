"""The TFLite deployment target as the kind records name it: what it
converts and what runs it.  NumPy and the standard library only, so that
the records can name the target without loading the pipeline
(``target.py``)."""

from dataclasses import dataclass

from ..oracles.client import ORACLES, OracleSpec
from .modes import MODES

LEGACY = {"keras.layers.LSTM": False, "tf_keras.layers.LSTM": True}  # kind -> TF_USE_LEGACY_KERAS


@dataclass(frozen=True)
class TFLiteTarget:
    """A deployment target of a kind (``KindRecord.targets``)."""

    name: str
    label: str
    modes: tuple  # modes.Mode, in conversion order
    oracle: OracleSpec  # what runs the converted model
    kinds: tuple  # the kinds it converts


TARGET = TFLiteTarget("tflite", "TFLite (TFLiteConverter, run by LiteRT)", MODES, ORACLES["litert"], tuple(LEGACY))
