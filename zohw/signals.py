"""Interrupts: Ctrl-C (SIGINT) and SIGTERM end a ``zohw`` command cleanly.

:func:`installed` (around every :func:`zohw.cli.main`) makes the first SIGINT raise
:class:`KeyboardInterrupt` and the first SIGTERM raise :class:`Terminated` (a
``KeyboardInterrupt``) in the main thread, so every ``finally`` and ``except BaseException``
on the way up runs: child processes are killed (:func:`zohw.sim.build` kills a build's or a
simulation's process group), temporary files and directories are removed, atomic writes are
abandoned. A second signal during that cleanup is ignored. The CLI then prints one line and
exits with :data:`EXIT_CODES` (130, 143).

Process pools: create one with ``initializer=pool_worker_init`` (each worker in a process group
of its own, so it and its children are stopped together and a terminal's Ctrl-C reaches only
the parent), submit jobs as ``pool.submit(in_worker, fn, ...)`` and use the pool inside
:func:`stopping`: on any exception the queued jobs are cancelled and the workers stopped at
once (a running job unwinds its cleanup, then its worker exits) — no job starts after the
signal.
"""

import contextlib
import os
import signal
import threading
import time

__all__ = ["Terminated", "installed", "received", "outcome", "EXIT_CODES", "pool_worker_init",
           "in_worker", "stopping", "stop_pool", "WorkerTerminated", "STOP_GRACE_S"]

#: Exit codes of an interrupted command: 128 + the signal number.
EXIT_CODES = {signal.SIGINT: 130, signal.SIGTERM: 143}


class Terminated(KeyboardInterrupt):
    """Raised in the main thread by SIGTERM (a KeyboardInterrupt, so that every cleanup written
    for Ctrl-C runs for it too)."""


_received = []


def received():
    """The first signal number received inside :func:`installed`, or None."""
    return _received[0] if _received else None


def _handler(signum, frame):
    if _received:                   # already unwinding: let the cleanup finish
        return
    _received.append(signum)
    raise Terminated() if signum == signal.SIGTERM else KeyboardInterrupt()


@contextlib.contextmanager
def installed():
    """The SIGINT and SIGTERM handlers, for the duration of the block (the previous ones are
    restored after it: :func:`zohw.cli.main` may run inside a test). Outside the main thread,
    where Python allows no handler, nothing changes."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    _received.clear()
    # A signal the parent chose to ignore stays ignored (a shell's background job ignores
    # SIGINT, so the terminal's Ctrl-C is not meant for it).
    previous = {signum: signal.signal(signum, _handler) for signum in EXIT_CODES
                if signal.getsignal(signum) is not signal.SIG_IGN}
    try:
        yield
    finally:
        if not _received:     # after a signal, keep ignoring more while the process exits
            for signum, handler in previous.items():
                signal.signal(signum, handler if handler is not None else signal.SIG_DFL)


def outcome(exc):
    """``(word, exit code)`` of an interrupt exception: ``("interrupted", 130)`` for Ctrl-C,
    ``("terminated (SIGTERM)", 143)`` for :class:`Terminated`."""
    if isinstance(exc, Terminated):
        return "terminated (SIGTERM)", EXIT_CODES[signal.SIGTERM]
    return "interrupted", EXIT_CODES[signal.SIGINT]


class WorkerTerminated(SystemExit):
    """Raised in a pool worker by SIGTERM: its job's cleanup runs, then :func:`in_worker` ends
    the worker (a SystemExit, so a worker stopped between jobs ends quietly too)."""


_worker_stopped = []


def _worker_sigterm(signum, frame):
    if _worker_stopped:             # already unwinding: let the cleanup finish
        return
    _worker_stopped.append(signum)
    raise WorkerTerminated(EXIT_CODES[signal.SIGTERM])


def pool_worker_init():
    """Initializer of a pool worker: a process group of its own (stopped with its children by
    :func:`stop_pool`), SIGTERM unwinding the running job, and no Ctrl-C handling (the parent
    handles it)."""
    _worker_stopped.clear()
    with contextlib.suppress(OSError):
        os.setpgid(0, 0)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _worker_sigterm)


def in_worker(fn, *args, **kwargs):
    """Run a pool job: ``pool.submit(in_worker, fn, ...)``. When the worker is stopped, the
    job's ``finally`` blocks run (scratch directories removed, its subprocesses killed) and the
    worker exits at once instead of taking the next queued job.

    The stop is remembered, not only raised: the executor's own code catches a
    :class:`WorkerTerminated` that lands in it (between jobs, or while a result is sent back)
    and goes on to the next queued job, which must then not start."""
    if _worker_stopped:
        os._exit(EXIT_CODES[signal.SIGTERM])
    try:
        return fn(*args, **kwargs)
    except WorkerTerminated:
        os._exit(EXIT_CODES[signal.SIGTERM])


def _signal_group(pid, signum):
    try:
        if os.getpgid(pid) == pid:              # its own group: the worker and its children
            os.killpg(pid, signum)
            return
    except OSError:
        pass
    with contextlib.suppress(OSError):
        os.kill(pid, signum)


#: Seconds stopped workers get to clean up before they are killed.
STOP_GRACE_S = 3.0


def stop_pool(pool, grace_s=STOP_GRACE_S):
    """Cancel ``pool``'s queued jobs and stop its workers (with their process groups): SIGTERM,
    then SIGKILL for any still alive after ``grace_s``."""
    procs = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for proc in procs:
        _signal_group(proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    for proc in procs:
        with contextlib.suppress(Exception):
            proc.join(max(0.0, deadline - time.monotonic()))
    for proc in procs:
        with contextlib.suppress(Exception):
            if proc.is_alive():
                _signal_group(proc.pid, signal.SIGKILL)
                proc.join(5)


@contextlib.contextmanager
def stopping(pool):
    """On an exception (Ctrl-C, SIGTERM, a failed job) inside the block, :func:`stop_pool`
    before it propagates; a clean exit leaves the pool alone."""
    try:
        yield pool
    except BaseException:
        stop_pool(pool)
        raise
