"""Worker processes: every item once, in order, shared arguments sent once per worker,
errors raised here, streamed items read ahead boundedly, and background work on a worker."""

from __future__ import annotations

import os

import pytest

from analysis import workers


def _pid_and(item, *, offset=0):
    if item == "boom":
        raise ValueError("a task failed")
    return os.getpid(), item + offset


def _pid():
    return os.getpid()


@pytest.mark.slow
def test_run_gives_every_item_in_order_across_processes():
    out = workers.run(_pid_and, list(range(40)), workers=2, offset=100, sizes=[i % 7 for i in range(40)])
    assert [v for _, v in out] == [i + 100 for i in range(40)]  # in item order, whatever order they ran in
    assert len({pid for pid, _ in out}) == 2  # this process and the worker both took items
    assert workers.background(_pid).result() != os.getpid()  # the worker is kept for more
    with pytest.raises(ValueError, match="a task failed"):
        workers.run(_pid_and, [1, 2, 3, "boom", 5, 6], workers=2, offset=0)
    processes = [p for w in workers._POOL for p in w._processes.values()]
    workers.stop()
    assert workers._POOL == [] and processes and not any(p.is_alive() for p in processes)


@pytest.mark.slow
def test_stream_gives_every_item_in_order_while_reading_ahead_at_most_two_each():
    read = []

    def items():
        for i in range(30):
            read.append(i)
            yield i

    seen = []
    for pid, value in workers.stream(_pid_and, items(), workers=2, offset=1000):
        assert len(read) - len(seen) <= 5  # two per worker sent, and the one just read
        seen.append(value)
        assert pid != os.getpid()  # worker processes only: this one reads
    assert seen == [i + 1000 for i in range(30)]
    with pytest.raises(ValueError, match="a task failed"):
        list(workers.stream(_pid_and, iter([1, "boom", 3]), workers=2))
    workers.stop()


def test_background_runs_here_without_workers(monkeypatch):
    monkeypatch.setattr(workers, "_POOL", [])
    assert workers.background(_pid).result() == os.getpid()
    failed = workers.background(_pid_and, "boom")
    with pytest.raises(ValueError, match="a task failed"):  # raised by result(), as from a worker
        failed.result()


def test_giving_memory_back_starts_no_process(monkeypatch):
    """``release_memory`` runs after every block and unit of an ingest: it must not start
    a child (``ctypes.util.find_library`` runs ``ldconfig``), which would briefly show the
    parent's whole memory a second time and cost a fork each call."""
    import subprocess

    from analysis import workers

    def refuse(*args, **kwargs):
        raise AssertionError(f"a process was started: {args}")

    workers._malloc_trim.cache_clear()
    monkeypatch.setattr(subprocess, "Popen", refuse)
    workers.release_memory()
    assert workers._malloc_trim() is not None  # this is glibc Linux: the trim is there


def test_memory_is_given_back_only_above_the_bound(monkeypatch):
    """``above``: the trim, and the garbage collection before it, run only when this
    process holds more than that (its resident size: more than nothing, less than the
    machine has; the kernel's peak, ``ru_maxrss``, is updated lazily and may lag it)."""
    import gc
    import os

    from analysis import workers

    resident = workers._resident_bytes()
    assert 0 < resident < os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    calls, collections = [], []
    monkeypatch.setattr(workers, "_malloc_trim", lambda: calls.append)

    def seen(phase, info):
        collections.append(phase)

    enabled = gc.isenabled()
    gc.disable()  # no automatic collection in between: only release_memory's are counted
    gc.callbacks.append(seen)
    try:
        workers.release_memory(above=resident * 4)
        assert calls == [] and collections == []
        workers.release_memory(above=resident // 4)
        workers.release_memory()
    finally:
        gc.callbacks.remove(seen)
        if enabled:
            gc.enable()
    assert calls == [0, 0] and collections.count("start") == 2


def _descendants(pid: int) -> set[int]:
    """The processes below ``pid`` (Linux's /proc)."""
    from pathlib import Path

    parents = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            parents[int(stat.parent.name)] = int(fields[1])
        except (OSError, ValueError, IndexError):
            continue
    found, todo = set(), [pid]
    while todo:
        p = todo.pop()
        kids = {c for c, parent in parents.items() if parent == p}
        found |= kids
        todo.extend(kids)
    return found


def _alive(pid: int) -> bool:
    from pathlib import Path

    try:  # a zombie has exited: only its entry is left for its parent
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.slow  # real processes killed
def test_workers_end_when_a_killed_ingest_leaves_them(tmp_path):
    """kill -9 an ingest whose worker processes are at work (an input over the size that
    starts them): every process it started (workers, the resource tracker) is gone within
    a few seconds."""
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    big = tmp_path / "big.csv"
    with big.open("w") as fh:
        fh.write("vendor,message_id,phone,template_id,submit_time,done_time,status\n")
        for i in range(450_000):
            fh.write(f"tencent,m{i:07d},1380013{i % 10000:04d},T1,2025-05-06 09:{i % 60:02d}:00,"
                     f"2025-05-06 09:{i % 60:02d}:07,delivered\n")
    assert big.stat().st_size > 32 << 20  # large enough to start the workers
    sms_ledger = str(Path(sys.executable).with_name("sms-ledger"))
    for delay in (0.0, 1.0, 2.5):  # after the workers started: staging, merging
        proc = subprocess.Popen([sms_ledger, "ingest", str(big), "--out", str(tmp_path / f"s{delay}")],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while len(_descendants(proc.pid)) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(delay)
        started = _descendants(proc.pid)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert started, delay  # the workers were running
        deadline = time.monotonic() + 15
        while any(map(_alive, started)) and time.monotonic() < deadline:
            time.sleep(0.2)
        left = [p for p in started if _alive(p)]
        for p in left:
            os.kill(p, signal.SIGKILL)
        assert not left, (delay, left)
