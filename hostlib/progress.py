"""A progress bar on stderr with rate and estimated time left, for long command-line jobs."""

import sys
import time

__all__ = ["ProgressBar"]


class ProgressBar:
    """Draw ``label  done/total  percent  rate  ETA`` on a stream, as a callback.

    On a terminal the line is redrawn in place at most every ``interval_s`` seconds; on a pipe
    or file a new line is written at most every ``quiet_interval_s`` seconds, so that logs stay
    short. The first and the final state are always written.

    Parameters
    ----------
    label : str
        What is being counted, for example ``explore``.
    unit : str
        The plural noun of the counted items, for example ``designs``.
    stream : file or None
        Where to draw; None takes ``sys.stderr`` at each call.
    """

    def __init__(
        self,
        label: str,
        unit: str,
        *,
        stream=None,
        interval_s: float = 0.2,
        quiet_interval_s: float = 5.0,
    ) -> None:
        self.label = label
        self.unit = unit
        self._stream = stream
        self._interval_s = interval_s
        self._quiet_interval_s = quiet_interval_s
        self._start = None
        self._last = None

    def __call__(self, done: int, total: int) -> None:
        """Record that ``done`` of ``total`` items are finished, and redraw when it is time."""
        stream = self._stream or sys.stderr
        now = time.monotonic()
        if self._start is None:
            self._start = now
        finished = done >= total
        interactive = stream.isatty()
        interval = self._interval_s if interactive else self._quiet_interval_s
        if not finished and self._last is not None and now - self._last < interval:
            return
        self._last = now
        elapsed = now - self._start
        rate = done / elapsed if elapsed > 0 else 0.0
        if finished:
            eta = f"done in {elapsed:.1f} s"
        elif rate > 0:
            eta = f"ETA {(total - done) / rate:.1f} s"
        else:
            eta = "ETA unknown"
        percent = 100.0 * done / total if total else 100.0
        line = (
            f"{self.label}  {done:,}/{total:,} {self.unit}  {percent:5.1f}%  "
            f"{rate:,.0f} {self.unit}/s  {eta}"
        )
        if interactive:
            stream.write("\r" + line + ("\n" if finished else ""))
        else:
            stream.write(line + "\n")
        stream.flush()
