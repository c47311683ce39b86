"""Progress display for long, opaque work (a Verilator build, a simulation)."""

import contextlib
import sys
import threading

__all__ = ["Spinner"]


class Spinner(contextlib.AbstractContextManager):
    """A tqdm status line showing the current phase and the elapsed time, refreshed twice a
    second from a background thread. Silent when stderr is not a terminal (tqdm's
    ``disable=None``), so logs and tests stay clean.

    Use :meth:`phase` as the ``progress`` callback of :func:`zohw.sim.engine.cross_check`.
    """

    def __init__(self, desc, *, file=None, disable=None):
        from tqdm import tqdm

        self._bar = tqdm(total=None, desc=desc, file=file or sys.stderr, disable=disable,
                         bar_format="{desc} [{elapsed}]", leave=False)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._tick, daemon=True)
        self._thread.start()

    def _tick(self):
        while not self._stop.wait(0.5):
            self._bar.refresh()

    def phase(self, message):
        self._bar.set_description_str(message, refresh=True)

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self._bar.close()
        return False
