"""Executors that run exploration tasks: in this process, in local processes, or on Dask.

An executor maps a module-level function over a list of argument tuples and yields
``(index, result)`` pairs as the tasks complete, in any order. The exploration writes each
result to its store as it arrives, so the order never changes what is stored.

- `SerialExecutor`: in the calling process, one task after another.
- `ProcessExecutor`: a `concurrent.futures.ProcessPoolExecutor` of N worker processes, started
  with ``spawn`` so that no worker inherits the parent's threads or open store.
- `DaskExecutor`: a `distributed.Client` connected to a running scheduler; each task is one
  Dask task. The workers must be able to import onebit.
"""

import multiprocessing
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed

__all__ = ["DaskExecutor", "ProcessExecutor", "SerialExecutor", "make_executor"]


class SerialExecutor:
    """Run every task in the calling process, in order."""

    name = "serial"

    def map_unordered(self, function: Callable, tasks: Sequence[tuple]) -> Iterator[tuple]:
        """Yield ``(index, function(*tasks[index]))`` for every task."""
        for index, arguments in enumerate(tasks):
            yield index, function(*arguments)

    def close(self) -> None:
        """Release nothing: the serial executor holds no resources."""

    def __enter__(self):
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


class ProcessExecutor(SerialExecutor):
    """Run the tasks in ``workers`` local processes.

    The processes start with the ``spawn`` method, which imports the main module again in each
    worker: a script that runs an exploration with more than one worker must guard its entry
    point with ``if __name__ == "__main__":``.

    Raises
    ------
    TypeError, ValueError
        If ``workers`` is not an int >= 1.
    """

    name = "processes"

    def __init__(self, workers: int) -> None:
        _check_workers(workers)
        self.workers = workers
        self._pool = None

    def map_unordered(self, function: Callable, tasks: Sequence[tuple]) -> Iterator[tuple]:
        """Yield ``(index, result)`` pairs as the worker processes finish the tasks."""
        if self._pool is None:
            self._pool = ProcessPoolExecutor(
                max_workers=self.workers, mp_context=multiprocessing.get_context("spawn")
            )
        futures = {
            self._pool.submit(function, *arguments): index for index, arguments in enumerate(tasks)
        }
        for future in as_completed(futures):
            yield futures[future], future.result()

    def close(self) -> None:
        """Stop the worker processes, cancelling tasks that have not started."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None


class DaskExecutor(SerialExecutor):
    """Run the tasks on the Dask distributed cluster whose scheduler is at ``address``.

    Parameters
    ----------
    address : str
        The scheduler, for example ``tcp://127.0.0.1:8786``.
    timeout_s : float
        How long to wait for the scheduler to respond.

    Raises
    ------
    OSError
        If the scheduler cannot be reached within ``timeout_s``.
    """

    name = "dask"

    def __init__(self, address: str, *, timeout_s: float = 10.0) -> None:
        if not isinstance(address, str) or not address:
            raise TypeError(f"scheduler address must be a non-empty str, got {address!r}")
        from distributed import Client

        self.address = address
        try:
            self._client = Client(address, timeout=timeout_s, set_as_default=False)
        except (OSError, TimeoutError) as error:
            raise OSError(
                f"cannot connect to the Dask scheduler at {address} within {timeout_s} s: {error}"
            ) from None

    def map_unordered(self, function: Callable, tasks: Sequence[tuple]) -> Iterator[tuple]:
        """Yield ``(index, result)`` pairs as the cluster finishes the tasks."""
        from distributed import as_completed as dask_as_completed

        # pure=False: equal arguments in two sweeps are still two tasks, never a result cached
        # for another client.
        futures = [self._client.submit(function, *arguments, pure=False) for arguments in tasks]
        index_of = {future.key: index for index, future in enumerate(futures)}
        for future in dask_as_completed(futures, loop=self._client.loop):
            yield index_of[future.key], future.result()

    def close(self) -> None:
        """Disconnect from the scheduler; the cluster keeps running."""
        self._client.close()


def make_executor(workers: int = 1, scheduler: str | None = None) -> SerialExecutor:
    """Return the executor for ``workers`` local processes or a Dask ``scheduler`` address.

    One worker runs the tasks in the calling process; more start that many processes. A
    scheduler address takes precedence and must not be combined with ``workers`` > 1.

    Raises
    ------
    TypeError, ValueError
        If ``workers`` is not an int >= 1, or both ``workers`` > 1 and ``scheduler`` are given.
    OSError
        If the scheduler cannot be reached.
    """
    _check_workers(workers)
    if scheduler is not None:
        if workers != 1:
            raise ValueError(
                f"workers = {workers} and scheduler = {scheduler!r} exclude each other: the "
                "Dask cluster has its own workers"
            )
        return DaskExecutor(scheduler)
    if workers == 1:
        return SerialExecutor()
    return ProcessExecutor(workers)


def _check_workers(workers) -> None:
    if isinstance(workers, bool) or not isinstance(workers, int):
        raise TypeError(f"workers must be an int, got {type(workers).__name__} {workers!r}")
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
