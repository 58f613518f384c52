"""The one clock the library times work with: training (trends.core.meter), decoding speed, encoding, evaluation.
Torch-free, so that the command line can time its stages without loading torch."""
from __future__ import annotations

import time


class Stopwatch:
    """Seconds of work that may stop and go on: `with Stopwatch() as watch: ...` times a block (`watch.seconds`
    after it); `start()`/`stop()` time a run of pieces. On a GPU the caller synchronises before it stops the watch:
    work still queued on the device is not done yet."""

    def __init__(self, seconds: float = 0.0):
        self.seconds = seconds  # the pieces timed so far, the one in progress aside
        self._since: float | None = None

    @classmethod
    def started(cls, seconds: float = 0.0) -> "Stopwatch":
        """A watch running from now (on top of `seconds` timed before), for a span that is not one block."""
        watch = cls(seconds)
        watch.start()
        return watch

    @property
    def running(self) -> bool:
        return self._since is not None

    def start(self) -> None:
        if self._since is None:
            self._since = time.perf_counter()

    def stop(self) -> float:
        if self._since is not None:
            self.seconds += time.perf_counter() - self._since
            self._since = None
        return self.seconds

    def read(self) -> float:
        """The seconds so far, the piece in progress included."""
        return self.seconds + (time.perf_counter() - self._since if self._since is not None else 0.0)

    def __enter__(self) -> "Stopwatch":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
