"""The worker processes the ``pandas`` engine shares its work with.

They are spawned once and kept for the life of this process, so that the pass over the
store's partitions, the ledgers' alerts (while this process builds the other sheets) and
later passes all use the same ones, and the console command can start them before it has
read anything: they import the package while it reads its inputs. Standard library only,
so starting them costs this process nothing.

Each worker is an executor of one process, so a call's shared arguments (the event files,
the time zone) are sent to each worker once, not with every task.
"""

from __future__ import annotations

import functools
import importlib
import multiprocessing
import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, as_completed, wait

_POOL: list[ProcessPoolExecutor] = []
_SHARED: dict = {}
#: What a worker imports as it starts: what the tasks need.
WARM = ("analysis.engine", "analysis.alerts", "scipy.special")
#: At most this many processes by default: each holds a partition (a few hundred MB).
MAX_WORKERS = 8


def default() -> int:
    """Processes to use by default: one per CPU this process may run on, at most
    :data:`MAX_WORKERS`."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return min(cpus, MAX_WORKERS)


def start(n: int) -> int:
    """Have ``n - 1`` worker processes running beside this one (started now, ready in
    the background). Returns how many are running."""
    context = multiprocessing.get_context("spawn")  # a fresh interpreter: delta-rs panics in a fork
    while len(_POOL) < n - 1:
        worker = ProcessPoolExecutor(1, mp_context=context, initializer=_prepare, initargs=(os.getpid(),))
        worker.submit(int)  # spawn it now, not at its first task
        _POOL.append(worker)
    return len(_POOL)


def stop() -> None:
    """End the worker processes now, without waiting for them to tear down their imports
    (which is what the interpreter's exit would wait for); tasks still running are lost."""
    while _POOL:
        worker = _POOL.pop()
        for process in list((getattr(worker, "_processes", None) or {}).values()):
            process.terminate()
        worker.shutdown(wait=True, cancel_futures=True)


def _prepare(parent: int) -> None:
    import threading

    threading.Thread(target=_end_with, args=(parent,), daemon=True, name="end-with-parent").start()
    import pyarrow as pa

    pa.set_memory_pool(pa.system_memory_pool())  # give freed memory back at once
    for module in WARM:
        importlib.import_module(module)
    import gc

    gc.freeze()  # the imports' objects: never garbage, no longer walked by every collection


def _end_with(parent: int) -> None:
    """End this worker once the process that started it is gone: killed (``kill -9``),
    it can no longer stop its workers, which would otherwise live on, holding memory and
    the files they were given."""
    import time

    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(1)


def _share(shared: dict) -> None:
    _SHARED.clear()
    _SHARED.update(shared)
    if not shared:  # between calls: give the memory the tasks freed back to the system
        release_memory()


def release_memory(*, above: int = 0) -> None:
    """Return freed memory to the operating system (glibc keeps it for reuse otherwise);
    ``above``: only when this process holds more than that many bytes (what is given back
    must be faulted in again by the next allocations, at a cost in kernel time). Below
    ``above`` nothing is done, not even a garbage collection (which walks every object
    of a process that has not frozen its imports' ones: 14 ms after each block read)."""
    import gc

    if above and _resident_bytes() <= above:
        return
    gc.collect()
    if trim := _malloc_trim():
        trim(0)


def _resident_bytes() -> int:
    """This process's resident memory (Linux's ``/proc``; 0 where there is none)."""
    try:
        with open("/proc/self/statm", "rb") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


@functools.cache
def _malloc_trim():
    """glibc's ``malloc_trim``, looked up once among the symbols already loaded (not with
    ``ctypes.util.find_library``, which runs ``ldconfig`` in a child process each time);
    ``None`` elsewhere (musl, macOS, Windows)."""
    import ctypes

    try:
        return ctypes.CDLL(None).malloc_trim
    except (AttributeError, OSError, TypeError):
        return None


def _call_shared(fn: Callable, item):
    return fn(item, **_SHARED)


def run(fn: Callable, items: list, *, workers: int, bar=None, sizes: list | None = None, here: bool = True,
        **shared) -> list:
    """``fn(item, **shared)`` for every item, in item order, on ``workers`` processes:
    this one and ``workers - 1`` worker processes, or (``here=False``, when this process
    holds memory it cannot give back) ``workers`` worker processes. The work holds the
    GIL: threads would not help.

    Each worker has two items queued; this process takes the next one whenever they are
    fed, so every process holds about one item at a time. With ``sizes`` (the items'
    work, in any unit), the largest go first, so that the processes finish together.
    ``bar``: a progress bar to advance by one per item.
    """
    pool = _POOL[:max(0, min(start(workers + (not here)), workers - here))]
    for worker in pool:
        worker.submit(_share, shared)  # one process each: runs before the tasks sent after it
    results: list = [None] * len(items)
    running: dict[Future, tuple[int, int]] = {}  # future -> (item, worker)
    queued = [0] * len(pool)

    def collect(future: Future) -> None:
        i, w = running.pop(future)
        results[i] = future.result()
        queued[w] -= 1
        if bar is not None:
            bar.update()

    order = range(len(items)) if sizes is None else sorted(range(len(items)), key=lambda j: -sizes[j])
    todo = iter(order)
    i = next(todo, None)
    while i is not None:
        for w, worker in enumerate(pool):  # keep the workers fed
            while queued[w] < 2 and i is not None:
                running[worker.submit(_call_shared, fn, items[i])] = (i, w)
                queued[w] += 1
                i = next(todo, None)
        if i is not None and here:
            results[i] = fn(items[i], **shared)
            if bar is not None:
                bar.update()
            i = next(todo, None)
        elif i is not None:
            wait(running, return_when=FIRST_COMPLETED)
        for future in [f for f in running if f.done()]:
            collect(future)
    for future in as_completed(list(running)):
        collect(future)
    for worker in pool:
        worker.submit(_share, {})  # let go of the shared arguments
    return results


def stream(fn: Callable, items: Iterable, *, workers: int, **shared) -> Iterator:
    """``fn(item, **shared)`` for every item, on ``workers`` worker processes, yielded in
    item order while this process goes on producing the items (reading a file, say).
    At most two items per worker are sent and not yet collected, so an input larger
    than memory streams through."""
    pool = _POOL[:min(start(workers + 1), workers)]
    for worker in pool:
        worker.submit(_share, shared)
    sent: deque[tuple[Future, int]] = deque()
    held = [0] * len(pool)
    try:
        for item in items:
            while min(held) >= 2:  # every worker busy: collect the oldest first
                future, w = sent.popleft()
                held[w] -= 1
                yield future.result()
            w = held.index(min(held))
            sent.append((pool[w].submit(_call_shared, fn, item), w))
            held[w] += 1
        while sent:
            future, w = sent.popleft()
            held[w] -= 1
            yield future.result()
    finally:
        for future, _ in sent:
            future.cancel()
        for worker in pool:
            worker.submit(_share, {})


def background(fn: Callable, *args) -> Future:
    """``fn(*args)`` on a worker when one is running (this process goes on meanwhile),
    else now, in this process. Returns its future."""
    if _POOL:
        return _POOL[0].submit(fn, *args)
    future: Future = Future()
    try:
        future.set_result(fn(*args))
    except Exception as exc:  # raised again by future.result(), as from a worker
        future.set_exception(exc)
    return future
