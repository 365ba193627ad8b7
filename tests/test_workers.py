"""The one process runner (`layerdef.solve.workers`): answers, errors handed back, a dead
worker failing its call only, and no worker outliving an early stop."""

from __future__ import annotations

import os
import time

import pytest

from layerdef.errors import InfeasibleError
from layerdef.solve.workers import Worker, WorkerDied, run_in_workers


@pytest.fixture(autouse=True)
def workers_find_this_module(monkeypatch):
    """The calls below name functions of this file, which a worker imports by name."""
    here = os.path.dirname(__file__)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [here, os.environ.get("PYTHONPATH")])))


def test_a_worker_answers_calls_and_raises_their_errors_here():
    worker = Worker()
    try:
        assert worker.call(divmod, 17, 5) == (3, 2)
        assert worker.call(os.getpid) not in (os.getpid(), worker.process.pid - 10**9)
        with pytest.raises(ZeroDivisionError):
            worker.call(divmod, 1, 0)
        with pytest.raises(InfeasibleError) as raised:
            worker.call(_infeasible, "requirement a: short in 1-2")
        assert raised.value.explanation == ["requirement a: short in 1-2"]
        assert worker.call(print, "printed by the worker") is None  # its prints do not break the pipe
    finally:
        worker.close()
    assert worker.process.poll() is not None


def test_a_killed_worker_is_reported_not_waited_for():
    worker = Worker()
    worker.submit(time.sleep, 30)
    worker.process.kill()
    with pytest.raises(WorkerDied):
        worker.answer()
    worker.close()


def test_every_call_is_answered_once_on_few_workers():
    calls = [(n, 3) for n in range(7)] + [(1, 0)]
    outcomes = {index: (solved, value) for index, solved, value in run_in_workers(divmod, calls, 2)}
    assert sorted(outcomes) == list(range(8))
    assert all(outcomes[n] == (True, divmod(n, 3)) for n in range(7))
    solved, error = outcomes[7]
    assert not solved and isinstance(error, ZeroDivisionError)


def test_a_dying_worker_fails_its_call_only():
    calls = [(0,), (1,), (2,)]
    outcomes = {index: (solved, value) for index, solved, value in run_in_workers(_die_on_one, calls, 1)}
    assert outcomes[0] == (True, 0) and outcomes[2] == (True, 2)
    assert not outcomes[1][0] and isinstance(outcomes[1][1], WorkerDied)


def test_stopping_early_ends_every_worker():
    results = run_in_workers(_pid_then_sleep, [(0.0,), (30.0,), (30.0,)], 3)
    _, _, first = next(results)
    results.close()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and _alive(first):
        time.sleep(0.1)
    assert not _alive(first)


def _infeasible(line: str) -> None:
    raise InfeasibleError([line])


def _die_on_one(n: int) -> int:
    if n == 1:
        os._exit(3)
    return n


def _pid_then_sleep(seconds: float) -> int:
    time.sleep(seconds)
    return os.getpid()


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split()[2] != "Z"
    except FileNotFoundError:
        return False


def _threads_set_here() -> int | None:
    from layerdef.solve import backend

    return backend.THREADS_WHEN_UNSET


def test_a_pool_s_workers_take_their_share_of_the_cores_for_highs(monkeypatch):
    """Workers solving at once would each run HiGHS on every core; a pool's worker gets
    cores / workers (at least one), a lone worker what it was given, and a back-end there
    passes that to HiGHS unless its call names threads itself."""
    from layerdef.solve import backend

    monkeypatch.setattr(os, "cpu_count", lambda: 4)
    assert backend.share_of_cores(2) == 2 and backend.share_of_cores(8) == 1
    answers = sorted(result for _, ok, result in run_in_workers(_threads_set_here, [(), ()], 2) if ok)
    assert answers == [2, 2]  # os.cpu_count() here says 4; the share is sent to the worker
    worker = Worker(3)
    try:
        assert worker.call(_threads_set_here) == 3
    finally:
        worker.close()
    worker = Worker()
    try:
        assert worker.call(_threads_set_here) is None
    finally:
        worker.close()
    monkeypatch.setattr(backend, "THREADS_WHEN_UNSET", 1)
    from conftest import INSTANCES

    from layerdef.io.reader import load
    from layerdef.model.formulation import formulate

    form = formulate(load(INSTANCES / "textbook" / "move-beats-staying.yaml"))
    assert backend.HighsBackend(form, backend.SolverOptions()).highs.getOptionValue("threads")[1] == 1
    assert backend.HighsBackend(form, backend.SolverOptions(threads=2)).highs.getOptionValue("threads")[1] == 2
