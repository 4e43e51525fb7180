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
"""

from __future__ import annotations

import concurrent.futures
import importlib
import multiprocessing
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from heparch.errors import InputError, MissingBackend
from heparch.replay.work import Context, Task, TaskResult, init_worker, run_in_worker, run_task


def execute(contexts: Mapping[str, Context], tasks: Sequence[Task], *, jobs: int = 1, scheduler: str | None = None) -> Iterator[TaskResult]:
    """Yield one :class:`TaskResult` per task, in completion order."""
    if not tasks:
        return
    if scheduler is not None:
        yield from _dask(contexts, tasks, scheduler)
    elif jobs <= 1 or len(tasks) == 1:
        for task in tasks:
            yield run_task(contexts, task)
    else:
        yield from _processes(contexts, tasks, jobs)


def _lost(task: Task, exc: BaseException) -> TaskResult:
    return TaskResult(task.token, task.point, None, "?", 0.0, f"worker lost: {type(exc).__name__}: {exc}".splitlines()[0])


def _processes(contexts: Mapping[str, Context], tasks: Sequence[Task], jobs: int) -> Iterator[TaskResult]:
    ctx = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(max_workers=min(jobs, len(tasks)), mp_context=ctx, initializer=init_worker, initargs=(dict(contexts),)) as pool:
        futures = {pool.submit(run_in_worker, task): task for task in tasks}
        try:
            for future in concurrent.futures.as_completed(futures):
                try:
                    yield future.result()
                except Exception as exc:  # BrokenProcessPool: a worker died (killed, out of memory)
                    yield _lost(futures[future], exc)
        finally:
            for future in futures:
                future.cancel()


def _dask(contexts: Mapping[str, Context], tasks: Sequence[Task], scheduler: str) -> Iterator[TaskResult]:
    try:
        distributed: Any = importlib.import_module("distributed")  # untyped: Any, not a blanket ignore
    except ModuleNotFoundError:
        raise MissingBackend("--scheduler needs Dask distributed, which is not installed: pip install 'heparch[dask]'") from None
    if not scheduler.startswith(("tcp://", "tls://", "inproc://", "ws://", "wss://", "ucx://")):
        raise InputError(f"--scheduler {scheduler!r}: give the Dask scheduler's address, e.g. tcp://host:8786")
    try:
        client = distributed.Client(scheduler, timeout="20s", set_as_default=False)
    except (OSError, TimeoutError) as exc:
        raise InputError(f"--scheduler {scheduler}: cannot connect to the Dask scheduler ({exc}); is it running?") from None
    try:
        shared: Any = client.scatter([dict(contexts)], broadcast=True, hash=False)[0]  # one object, not one future per key
        futures = {client.submit(run_task, shared, task, pure=False): task for task in tasks}
        for future in distributed.as_completed(list(futures), loop=client.loop):
            try:
                yield future.result()
            except Exception as exc:  # a worker died or could not import heparch
                yield _lost(futures[future], exc)
            finally:
                future.release()
    finally:
        client.close()
