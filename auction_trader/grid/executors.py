"""Where a grid's combinations run. Each executor takes :class:`~.worker.Task` objects and yields
one :class:`~.worker.Outcome` per task, in the order they finish; all of them call the same
:func:`~.worker.run_task`, so the metrics do not depend on the executor.

* ``local`` with one worker: in this process, one after another (no start-up cost, no pickling).
* ``local`` with N workers: N spawned processes (``spawn``, not ``fork``: Nautilus runs Rust
  threads, and forking a threaded process can deadlock). A worker that dies (a crash, the OOM
  killer) breaks the pool; the combinations it took down are retried once in a new pool and
  recorded as failed if the pool breaks again.
* ``dask``: a ``dask.distributed`` cluster at ``scheduler`` (or, without one, a local cluster of
  N single-threaded worker processes on 127.0.0.1). Tasks carry the catalog's path, not its data:
  every worker must reach the catalog at that same path (a shared filesystem, or the same copy on
  every machine), and checks its fingerprint before running anything.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool

from auction_trader.grid.worker import Outcome, Task, canonical_json, release, run_task

EXECUTORS = ("local", "dask")


def execute(tasks: list[Task], *, workers: int, executor: str = "local", scheduler: str | None = None) -> Iterator[Outcome]:
    if executor == "dask":
        return _dask(tasks, workers, scheduler)
    if executor != "local":
        raise ValueError(f"unknown executor {executor!r} (have {', '.join(EXECUTORS)})")
    return _in_process(tasks) if workers <= 1 else _pool(tasks, workers)


def _in_process(tasks: Iterable[Task]) -> Iterator[Outcome]:
    try:
        for task in tasks:
            yield run_task(task)
    finally:
        release()


def _pool(tasks: list[Task], workers: int) -> Iterator[Outcome]:
    attempts = dict.fromkeys((t.index for t in tasks), 0)
    pending = list(tasks)
    context = multiprocessing.get_context("spawn")
    while pending:
        broken: list[Task] = []
        pool = ProcessPoolExecutor(max_workers=min(workers, len(pending)), mp_context=context)
        try:
            futures: dict[Future, Task] = {pool.submit(run_task, t): t for t in pending}
            while futures:
                done, _ = wait(futures, return_when=FIRST_COMPLETED)
                for future in done:
                    task = futures.pop(future)
                    try:
                        yield future.result()
                    except BrokenProcessPool:
                        attempts[task.index] += 1
                        if attempts[task.index] < 2:
                            broken.append(task)
                        else:
                            yield lost(task, "a worker process died twice while this combination was running or queued (a crash or out of memory)")
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
        pending = sorted(broken, key=lambda t: t.index)


def _dask(tasks: list[Task], workers: int, scheduler: str | None) -> Iterator[Outcome]:
    from dask.distributed import Client, LocalCluster, as_completed  # noqa: PLC0415 (optional and heavy)

    cluster = None
    if scheduler is None:
        cluster = LocalCluster(n_workers=max(1, workers), threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None)
        scheduler = cluster.scheduler_address
    client = Client(scheduler)
    try:
        futures = {client.submit(run_task, t, key=f"auction-grid-{t.run_id}", pure=False): t for t in tasks}
        for future in as_completed(futures):
            task = futures[future]
            try:
                yield future.result()
            except Exception as exc:  # noqa: BLE001 - e.g. KilledWorker: recorded, the grid goes on
                yield lost(task, f"{type(exc).__name__}: {exc}")
            future.release()
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def lost(task: Task, error: str) -> Outcome:
    """The outcome of a combination whose worker never reported back."""
    return Outcome(task.index, task.run_id, False, canonical_json({"status": "failed", "error": error}), float("nan"), float("nan"), "")
