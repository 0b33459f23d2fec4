"""Where independent tasks run: in this process, on local worker processes, or on a Dask cluster.

One helper, :func:`parallel_map`, used by every function that repeats independent work
(simulations of a power analysis, points of a power curve, conditions of a training grid). It
delegates to joblib, whose ``"dask"`` backend sends the tasks to a :mod:`dask.distributed`
cluster. Results never depend on where a task ran: each task carries its own seed.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from pluralign._compat import require

#: Execution backends named by ``backend=`` (any backend registered with joblib is accepted too).
BACKENDS = ("loky", "threading", "multiprocessing", "dask")


def _check(n_jobs: int | None, backend: str | None, client: Any) -> str | None:
    if n_jobs is not None and (int(n_jobs) != n_jobs or n_jobs == 0):
        raise ValueError(f"n_jobs must be a non-zero integer (-1: all cores), got {n_jobs!r}")
    if client is not None:
        if backend not in (None, "dask"):
            raise ValueError(
                f"client= is a Dask client, which runs on backend='dask'; got backend={backend!r}"
            )
        backend = "dask"
    if backend is not None and not isinstance(backend, str):
        raise TypeError(f"backend must be a string such as {BACKENDS}, got {backend!r}")
    return backend


def parallel_map(
    func: Callable[..., Any],
    tasks: Iterable[Sequence[Any]],
    *,
    n_jobs: int | None = 1,
    backend: str | None = None,
    client: Any = None,
) -> Iterator[Any]:
    """Call ``func(*task)`` for every task; yield the results as they finish.

    Parameters
    ----------
    func : callable
        A module-level function (it is pickled to worker processes and cluster workers).
    tasks : iterable of tuples
        Positional arguments of each call.
    n_jobs : int, default 1
        Worker processes of a local backend (-1: all cores). With ``n_jobs=1`` and no
        ``backend`` or ``client`` the tasks run one after another in this process, in order;
        with ``n_jobs != 1`` and no ``backend``, a backend set around the call with
        ``joblib.parallel_config`` is used. Ignored on Dask, which uses every worker thread of
        the cluster.
    backend : str, optional
        A joblib backend: ``"loky"`` (processes, the default when ``n_jobs != 1``),
        ``"threading"``, ``"multiprocessing"`` or ``"dask"`` (the current
        :class:`dask.distributed.Client`, or ``client``).
    client : dask.distributed.Client, optional
        Run on this Dask cluster (implies ``backend="dask"``).

    Yields
    ------
    object
        ``func(*task)`` for each task, in order of completion (in task order when serial); a
        task should return something that says which task it was.

    Examples
    --------
    >>> sorted(parallel_map(pow, [(2, 3), (3, 2)]))
    [8, 9]
    >>> sorted(parallel_map(pow, [(2, 3), (3, 2)], n_jobs=2, backend="threading"))
    [8, 9]
    """
    backend = _check(n_jobs, backend, client)
    tasks = list(tasks)
    if backend is None and (n_jobs == 1 or len(tasks) <= 1):
        yield from (func(*task) for task in tasks)
        return
    from joblib import Parallel, delayed, parallel_config

    context: contextlib.AbstractContextManager = contextlib.nullcontext()
    if backend == "dask":
        require("distributed", purpose="running on a Dask cluster")
        try:
            context = parallel_config(backend="dask", **({"client": client} if client else {}))
        except ValueError as exc:
            raise ValueError(
                "backend='dask' needs a Dask client: create one first (from dask.distributed "
                "import Client; client = Client('scheduler-address:8786')) or pass client="
            ) from exc
        n_jobs = -1
    elif backend is not None:
        context = parallel_config(backend=backend)
    with context:
        runner = Parallel(n_jobs=n_jobs, return_as="generator_unordered")
        yield from runner(delayed(func)(*task) for task in tasks)
