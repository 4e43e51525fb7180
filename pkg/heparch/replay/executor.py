"""Run tasks in parallel and yield their results as they arrive.

Three engines, one interface (:func:`execute`):

- ``jobs == 1`` without a scheduler: in this process, in order (no start-up cost);
- ``jobs > 1``: local worker processes (``concurrent.futures.ProcessPoolExecutor``, the
  ``spawn`` start method); the contexts reach each worker once, through its initializer;
- ``scheduler="tcp://host:port"``: Dask distributed. The contexts are scattered to every
  worker once (``broadcast=True``); each task carries only its point's patches. The
  workers need heparch installed (the same version: its name is checked).

A point's own failure comes back as a result with ``error`` set (see
:mod:`heparch.replay.work`); a worker that dies takes only its in-flight points with it,
which are reported as errors.

Stopping early (Ctrl-C, SIGTERM, or the consumer closing the iterator) stops this run's own
work and nothing else: local workers ignore SIGINT (a terminal sends it to the whole process
group; the parent decides) and are terminated, not waited for (a pyhf point may take
minutes), then reaped, so no orphan or zombie is left; on Dask this run's futures are
cancelled and its client closed, never the scheduler or the workers, which others may share.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import importlib
import multiprocessing
import signal
import time
from collections.abc import Generator, Iterator, Mapping, Sequence
from typing import Any, Final

from heparch import signals
from heparch.errors import InputError, MissingBackend
from heparch.replay.work import Context, Task, TaskResult, init_worker, run_in_worker, run_task

#: how long stopped workers get to exit after SIGTERM before SIGKILL, and a Dask client to close
STOP_SECONDS: Final = 5.0


def execute(contexts: Mapping[str, Context], tasks: Sequence[Task], *, jobs: int = 1, scheduler: str | None = None) -> Generator[TaskResult, None, None]:
    """Yield one :class:`TaskResult` per task, in completion order; closing the generator early
    stops this run's work (see the module docs)."""
    if not tasks:
        return
    if scheduler is not None:
        yield from _dask(contexts, tasks, scheduler)
    elif jobs <= 1 or len(tasks) == 1:
        for task in tasks:
            signals.check()  # an interrupt whose exception was swallowed (see heparch.signals) stops here
            yield run_task(contexts, task)
    else:
        yield from _processes(contexts, tasks, jobs)


def _lost(task: Task, exc: BaseException) -> TaskResult:
    return TaskResult(task.token, task.point, None, "?", 0.0, f"worker lost: {type(exc).__name__}: {exc}".splitlines()[0])


def _init_local_worker(contexts: Mapping[str, Context]) -> None:
    """A local worker ignores SIGINT (the parent stops it) and keeps the contexts."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})  # blocked by the parent while it started us
    init_worker(contexts)


def _processes(contexts: Mapping[str, Context], tasks: Sequence[Task], jobs: int) -> Iterator[TaskResult]:
    ctx = multiprocessing.get_context("spawn")
    pool = concurrent.futures.ProcessPoolExecutor(max_workers=min(jobs, len(tasks)), mp_context=ctx, initializer=_init_local_worker, initargs=(dict(contexts),))
    finished = False
    try:
        with signals.blocked():  # workers start on submit: a Ctrl-C meanwhile waits for us (raised here, inside the try), and they never see it
            futures = {pool.submit(run_in_worker, task): task for task in tasks}
        for future in concurrent.futures.as_completed(futures):
            signals.check()
            try:
                yield future.result()
            except Exception as exc:  # BrokenProcessPool: a worker died (killed, out of memory)
                yield _lost(futures[future], exc)
        finished = True
    finally:
        if finished:
            pool.shutdown(wait=True)
        else:
            with signals.shielded():
                stop_pool(pool)


def stop_pool(pool: concurrent.futures.ProcessPoolExecutor) -> None:
    """Stop ``pool`` now: terminate the workers (SIGTERM, then SIGKILL after :data:`STOP_SECONDS`)
    and reap them; the pool, broken, fails the points left. Never waits for a point to finish.

    The futures are not cancelled first: Python 3.11's pool then fails setting the exception of
    a cancelled future in its own thread (InvalidStateError, printed with a traceback)."""
    processes = list((getattr(pool, "_processes", None) or {}).values())  # Python < 3.14 has no public terminate_workers()
    for process in processes:
        with contextlib.suppress(OSError, ValueError):
            process.terminate()
    deadline = time.monotonic() + STOP_SECONDS
    for process in processes:
        with contextlib.suppress(OSError, ValueError, AssertionError):
            process.join(max(0.0, deadline - time.monotonic()))
            if process.is_alive():
                process.kill()
                process.join(1.0)
    pool.shutdown(wait=True)  # the workers are gone: returns at once, and joins its threads


def _dask_client(scheduler: str) -> tuple[Any, Any]:
    """Dask distributed (the module) and a client of ``scheduler``; refused when Dask is not
    installed, ``scheduler`` is not an address or the scheduler cannot be reached."""
    try:
        distributed: Any = importlib.import_module("distributed")  # untyped: Any, not a blanket ignore
    except ModuleNotFoundError:
        raise MissingBackend("scheduler needs Dask distributed, which is not installed: pip install 'heparch[dask]'", option="scheduler") from None
    if not scheduler.startswith(("tcp://", "tls://", "inproc://", "ws://", "wss://", "ucx://")):
        raise InputError(f"scheduler {scheduler!r}: give the Dask scheduler's address, e.g. tcp://host:8786", option="scheduler")
    try:
        return distributed, distributed.Client(scheduler, timeout="20s", set_as_default=False)
    except (OSError, TimeoutError) as exc:
        raise InputError(f"scheduler {scheduler}: cannot connect to the Dask scheduler ({exc}); is it running?", option="scheduler") from None


def _dask(contexts: Mapping[str, Context], tasks: Sequence[Task], scheduler: str) -> Iterator[TaskResult]:
    distributed, client = _dask_client(scheduler)
    finished = False
    ours: list[Any] = []  # this run's futures: the only ones an interrupt cancels
    try:
        shared: Any = client.scatter([dict(contexts)], broadcast=True, hash=False)[0]  # one object, not one future per key
        ours.append(shared)
        futures = {client.submit(run_task, shared, task, pure=False): task for task in tasks}
        ours += futures
        for future in distributed.as_completed(list(futures), loop=client.loop):
            try:
                yield future.result()
            except Exception as exc:  # a worker died or could not import heparch
                yield _lost(futures[future], exc)
            finally:
                future.release()
        finished = True
    finally:
        if finished:
            client.close()
        else:
            with signals.shielded():
                stop_client(client, ours)


def stop_client(client: Any, futures: Sequence[Any]) -> None:
    """Cancel this run's futures and close this client; the scheduler and its workers, which
    others may share, are left running (a point already running on a worker thread ends there)."""
    with contextlib.suppress(Exception):  # the scheduler may be gone already: nothing more to cancel
        client.cancel(list(futures), force=True)
    with contextlib.suppress(Exception):
        client.close(timeout=STOP_SECONDS)
