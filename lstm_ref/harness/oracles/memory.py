"""Built layers, cached per configuration, with the worker's memory kept flat.

A worker builds its framework's layer for a configuration once and reuses it
for every request with that configuration (the weights are assigned anew on
each request).  A build costs 5-80 ms (``make bench`` prints the measured
share); a live request's run costs 3-40 ms.

Frameworks keep global state per built layer (Keras' name registry, graph
and trace caches): a worker that builds a new layer for every example grows
by ~0.15 MB an example (measured: +121 MB over 800 Keras 3 requests).  Every
``every`` builds, the worker drops its cached layers and clears the
framework's session: +14 MB over the same 800 with every=100.  The cache
holds more configurations than ``make bench``'s examples draw (Keras 3:
360), and ``every`` is as large: with 100, the clearing emptied the cache
so often that 85% of Keras 3's requests built a layer.
"""

import gc
import json
from collections import OrderedDict

from lstm_ref.harness.oracles import protocol


class LayerCache:
    """``cache(*args)``: ``build(*args)`` the first time these (JSON) args
    are asked for, the same object after; the least recently used is dropped
    beyond ``size``.  Builds are timed as the request's ``build`` phase."""

    def __init__(self, build, clear_session=None, size: int = 512, every: int = 500):
        self.build = build
        self.clear_session = clear_session
        self.size = size
        self.every = every
        self.builds = 0
        self.layers = OrderedDict()

    def __call__(self, *args):
        key = json.dumps(args, sort_keys=True)
        if key in self.layers:
            self.layers.move_to_end(key)
            return self.layers[key]
        protocol.mark("request")
        self.builds += 1
        if self.clear_session is not None and self.builds % self.every == 0:
            self.layers.clear()
            self.clear_session()
            gc.collect()
        while len(self.layers) >= self.size:
            self.layers.popitem(last=False)
        value = self.layers[key] = self.build(*args)
        protocol.mark("build")
        return value
