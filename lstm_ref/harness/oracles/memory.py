"""Keep a long-lived worker's memory flat.

Frameworks keep global state per built layer (Keras' name registry, graph
and trace caches): a worker that builds a new layer for every example grows
by ~0.15 MB an example (measured: +121 MB over 800 Keras 3 requests).  Every
``every`` builds, the worker drops its cached layers and clears the
framework's session: +14 MB over the same 800.
"""

import gc


class SessionReset:
    def __init__(self, cache: dict, clear_session, every: int = 100):
        self.cache = cache
        self.clear_session = clear_session
        self.every = every
        self.builds = 0

    def before_build(self):
        self.builds += 1
        if self.builds % self.every == 0:
            self.cache.clear()
            self.clear_session()
            gc.collect()
