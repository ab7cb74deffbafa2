"""The JSON schemas of what ``lstm-ref`` writes with ``--json``, shipped
with the package (``pyproject.toml``'s package data):

* ``check.schema.json``: ``lstm-ref check --json``, one schema for every
  format (Keras 3 and Keras 2 models, weights-only ``.h5``, ``.onnx``,
  ``.pt``, TF checkpoints, ``.tflite``; with or without ``--source``);
* ``tflite-sweep.schema.json``: ``lstm-ref tflite-sweep --json``.

Both are JSON Schema draft 2020-12, and each output carries
``schema_version`` (:data:`SCHEMA_VERSION`), raised when a field is removed
or changes meaning.  ``load(name)`` reads one (no validator needed:
``jsonschema`` is only in the ``test`` extra, where
``parity_tests/test_json_schema.py`` validates every format's output).
"""

import json
from importlib import resources

SCHEMA_VERSION = 1
CHECK = "check.schema.json"
TFLITE_SWEEP = "tflite-sweep.schema.json"


def load(name):
    """The schema file ``name`` (:data:`CHECK`, :data:`TFLITE_SWEEP`) as a dict."""
    return json.loads(resources.files(__name__).joinpath(name).read_text(encoding="utf-8"))
