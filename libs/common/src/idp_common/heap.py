"""The garbage collector set for a long-running service, once it has started.

What starting builds (modules, the app and its routes, models, settings, the SQS client's
endpoint data: about 200,000 objects in operation-svc) lives as long as the process, yet
CPython's full collections walk all of it, stopping the event loop each time. Frozen, it
is left out of every collection, which then walks only what the service allocated since.
The youngest generation is collected after 10,000 allocations rather than 700: a request
allocates thousands of objects, nearly all freed by reference counting, so the default
collected several times per request for little garbage. Measured in `make bench`'s burst
(2.6 s): operation-svc spent 167 ms in collections (one full one of 113 ms), the worker
126 ms (83 ms); settled, 5 and 4 ms."""

from __future__ import annotations

import gc

YOUNG_COLLECTION_THRESHOLD = 10_000


def settle_after_startup() -> None:
    gc.collect()  # what starting left as garbage is freed, not frozen
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_COLLECTION_THRESHOLD, middle, old)
