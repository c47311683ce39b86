"""Where the tasks of a sweep run: in this process, on a local process pool, or on a Dask
distributed cluster. Each executor yields ``(tag, outcome)`` as tasks finish, in completion
order; on any exception in the consumer (Ctrl-C, SIGTERM, a failed task) queued work is
cancelled and running work abandoned at once (local workers are killed), so that nothing new
starts after the signal. Finished results are the caller's to keep (it caches each as it
arrives).
"""

from zohw.errors import UsageError

from .tasks import run_task

__all__ = ["SerialExecutor", "PoolExecutor", "DaskExecutor", "make_executor"]


class SerialExecutor:
    """Every task in this process, one after the other (``--jobs 1``)."""

    description = "this process"

    def run(self, items):
        for tag, task, evaluator in items:
            yield tag, run_task(task, evaluator)

    def close(self):
        pass


class PoolExecutor:
    """A local process pool of ``workers`` processes (each in a process group of its own, so
    that a stop kills a worker and the tools it runs)."""

    def __init__(self, workers=2):
        self.workers = workers
        self.description = f"{workers} local processes"

    def run(self, items):
        from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

        from zohw.signals import stop_pool

        items = list(items)
        if not items:
            return
        pool = ProcessPoolExecutor(max_workers=min(self.workers, len(items)),
                                   initializer=_worker_init)
        try:
            futures = {pool.submit(run_task, task, ev): tag for tag, task, ev in items}
            pending = set(futures)
            while pending:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for fut in done:
                    yield futures[fut], fut.result()
        except BaseException:
            stop_pool(pool)
            raise
        pool.shutdown(wait=True)

    def close(self):
        pass


def _worker_init():
    from zohw.signals import pool_worker_init

    pool_worker_init()
    # Tasks are small tensors: one intra-op thread per worker process, the pool is the
    # parallelism.
    import torch

    torch.set_num_threads(1)


class DaskExecutor:
    """Tasks of a Dask distributed cluster (``tcp://HOST:PORT``), each a Dask task keyed by
    its cache key. The client connects at construction, so an unreachable scheduler is a
    usage error before any work."""

    def __init__(self, address, timeout=10):
        try:
            from distributed import Client
        except ImportError:  # pragma: no cover - dask[distributed] is a dependency
            raise UsageError("--scheduler needs dask[distributed] (pip install "
                             "'dask[distributed]')") from None
        try:
            self._client = Client(address, timeout=timeout, set_as_default=False)
        except (OSError, TimeoutError, ValueError) as exc:
            raise UsageError(f"scheduler {address} cannot be reached ({exc})") from None
        self.address = address
        workers = len(self._client.scheduler_info().get("workers", {}))
        self.description = f"the Dask cluster at {address} ({workers} workers)"

    def run(self, items):
        from distributed import as_completed

        items = list(items)
        if not items:
            return
        futures = {}
        for tag, task, ev in items:
            fut = self._client.submit(run_task, task, ev, key=f"zohw-explore-{tag}",
                                      pure=False, retries=0)
            futures[fut] = tag
        try:
            for fut in as_completed(list(futures), loop=self._client.loop):
                yield futures[fut], fut.result()
        except BaseException:
            self._client.cancel(list(futures), force=True)
            raise

    def close(self):
        self._client.close()


def make_executor(scheduler=None, jobs=None):
    """The executor of a sweep: Dask at ``scheduler``, else ``jobs`` local processes (default
    2; 1 runs in this process)."""
    if scheduler:
        if not scheduler.startswith(("tcp://", "tls://", "inproc://", "ucx://")):
            raise UsageError(f"scheduler must be an address like tcp://HOST:PORT, not "
                             f"{scheduler!r}")
        return DaskExecutor(scheduler)
    jobs = 2 if jobs is None else jobs
    if jobs < 1:
        raise UsageError(f"jobs must be at least 1, not {jobs}")
    if jobs == 1:
        return SerialExecutor()
    return PoolExecutor(jobs)
