"""Scoring a large batch: each distinct text once, spread over a process pool.

Scorers are pure functions of the text, so a batch is reduced to its distinct texts (a wire
story syndicated by several outlets, a comment posted twice), and when enough remain they are
split into chunks scored by a pool of processes, one per idle core (lexicon scoring is Python
code holding the GIL: threads would not help). Idle, because on a busy machine a pool is not
reliably faster than one process (docs/benchmarks.md, "News scoring and collection").

The pool forks a single-threaded process (the workers inherit the loaded lexicons) and uses
``forkserver`` in a process with threads (a fork there can deadlock, e.g. in the stream
service; each worker then imports the scorers and the main module again). It is not used in
a daemonic process (a Celery prefork worker cannot have children): there, and whenever the
pool fails to start, the batch is scored in-process, with the same result.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

log = logging.getLogger(__name__)

POOL_MIN_TEXTS = 4_000  # below this a pool's start (about 0.5 s) costs more than it saves
CHUNKS_PER_WORKER = 4


def available_cores() -> int:
    """Cores this process may run on (its CPU affinity, not the machine's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def idle_cores() -> int:
    """Cores not already busy: available cores less the 1-minute load average, rounded."""
    cores = available_cores()
    try:
        busy = os.getloadavg()[0]
    except OSError:  # no load average on this platform
        busy = 0.0
    return max(1, min(cores, round(cores - busy)))


def pool_workers(texts: int, workers: int | None) -> int:
    """How many processes to score ``texts`` distinct texts with (1: in this process;
    ``workers=None``: the idle cores)."""
    wanted = idle_cores() if workers is None else workers
    if wanted <= 1 or texts < POOL_MIN_TEXTS or multiprocessing.current_process().daemon:
        return 1
    return wanted


def map_unique(
    score: Callable[[list[str]], list[float]], texts: Sequence[str], workers: int | None = None
) -> list[float]:
    """``score(texts)`` with each distinct text scored once, on ``workers`` processes
    (``None``: one per idle core; ``score`` must be a module-level function)."""
    position: dict[str, int] = {}
    unique: list[str] = []
    for text in texts:
        if text not in position:
            position[text] = len(unique)
            unique.append(text)
    n = pool_workers(len(unique), workers)
    scores = _on_pool(score, unique, n) if n > 1 else None
    if scores is None:
        scores = score(unique)
    return [scores[position[t]] for t in texts]


def _on_pool(
    score: Callable[[list[str]], list[float]], unique: list[str], n: int
) -> list[float] | None:
    """Scores from ``n`` processes, or None when the pool could not run (then the caller
    scores in-process: slower, same result)."""
    size = -(-len(unique) // (n * CHUNKS_PER_WORKER))
    chunks = [unique[i : i + size] for i in range(0, len(unique), size)]
    method = "fork" if threading.active_count() == 1 else "forkserver"
    context = multiprocessing.get_context(method)
    try:
        with ProcessPoolExecutor(n, mp_context=context) as pool:
            return [s for part in pool.map(score, chunks) for s in part]
    except (BrokenProcessPool, OSError) as exc:
        # e.g. a script without an `if __name__ == "__main__"` guard, which the workers
        # re-import, or no room for new processes.
        log.warning("event=news_scoring_pool_failed workers=%d error=%r", n, exc)
        return None
