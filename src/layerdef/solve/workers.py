"""Independent solves in other Python processes: the one runner of the sweep's cases and of
the scenarios solved alone beside a hedged plan.

A worker is a fresh interpreter (`python -c`) that imports only layerdef and serves calls sent
to it over a pipe: `(function, args)` pickled in, `(ok, result or error)` pickled out, each
message prefixed by its length. Unlike multiprocessing's spawn it never runs the caller's
script again (a script without a `__main__` guard is safe), and it ends with its parent: at
the end of its input, and within a second when the parent is gone (killed by SIGKILL, say)
while it is still solving."""

from __future__ import annotations

import os
import pickle
import queue
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, BinaryIO

from layerdef.solve.backend import share_of_cores, use_threads

HEADER = struct.Struct("<Q")


class WorkerDied(RuntimeError):
    """The worker process ended without an answer (out of memory, killed)."""


def can_start_workers() -> bool:
    """Whether a second process may be started: more than one core and a Python executable
    (a daemonic multiprocessing child may not have children of its own)."""
    import multiprocessing

    return (os.cpu_count() or 1) > 1 and bool(sys.executable) and not multiprocessing.current_process().daemon


class Worker:
    """One worker process; `submit` a call, then `answer` it (its error raised here).
    `threads`: HiGHS's threads in the worker where a call names none (its share of the cores
    beside the others solving at once; None: every core)."""

    def __init__(self, threads: int | None = None) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-c", "from layerdef.solve.workers import serve; serve()", str(os.getpid()),
             str(threads or 0)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            env=_environment_finding_layerdef())
        self._sending: threading.Thread | None = None

    def submit(self, function: Callable, *args: Any) -> None:
        """Send a call without waiting for the worker to read it (it may still be importing)."""
        payload = pickle.dumps((function, args))
        self._sending = threading.Thread(target=_send, args=(self.process.stdin, payload), daemon=True)
        self._sending.start()

    def answer(self) -> Any:
        """The result of the call submitted last; raises its error, or `WorkerDied`."""
        message = _receive(self.process.stdout)
        if message is None:
            raise WorkerDied(f"worker process {self.process.pid} ended without an answer "
                             f"(exit code {self.process.wait()})")
        solved, value = pickle.loads(message)
        if not solved:
            raise value
        return value

    def call(self, function: Callable, *args: Any) -> Any:
        self.submit(function, *args)
        return self.answer()

    def close(self) -> None:
        """End the worker: at once if it is still working, else by closing its input."""
        if self.process.poll() is None:
            self.process.terminate()
        for pipe in (self.process.stdin, self.process.stdout):
            try:
                pipe.close()
            except OSError:
                pass
        self.process.wait()


class Skipped:
    """The answer of a call that `wanted` turned down when its turn came."""


def run_in_workers(function: Callable, calls: Sequence[tuple], workers: int,
                   ready: Callable[[int, tuple], tuple | None] | None = None,
                   beside: int = 0) -> Iterator[tuple[int, bool, Any]]:
    """`function(*args)` for every args of `calls` on up to `workers` worker processes;
    yields (index, True, result) or (index, False, error) as each finishes. A worker that
    dies fails its call only; the next call gets a new one. `ready(index, args)`, asked when
    a call's turn comes, gives the arguments to call it with then, or None to turn it down:
    (index, True, Skipped()) then, with nothing run (a search that prunes, or asks less of a
    call, by what the answers so far say). Closing the iterator early (an error, Ctrl-C)
    ends every worker. Each worker's HiGHS takes its share of the cores (`share_of_cores`),
    counting `beside` processes that solve at the same time (the caller's own)."""
    share = share_of_cores(min(workers, len(calls)) + beside)
    todo: queue.Queue = queue.Queue()
    for index, args in enumerate(calls):
        todo.put((index, args))
    done: queue.Queue = queue.Queue()
    running: list[Worker] = []
    stopping = threading.Event()

    def drive() -> None:
        worker: Worker | None = None
        while not stopping.is_set():
            try:
                index, args = todo.get_nowait()
            except queue.Empty:
                break
            if ready is not None and (args := ready(index, args)) is None:
                done.put((index, True, Skipped()))
                continue
            try:
                if worker is None:
                    worker = Worker(share)
                    running.append(worker)
                done.put((index, True, worker.call(function, *args)))
            except WorkerDied as error:
                done.put((index, False, error))
                worker = None
            except Exception as error:  # noqa: BLE001 - the call's own error, handed back
                done.put((index, False, error))
        if worker is not None:
            worker.close()

    threads = [threading.Thread(target=drive, daemon=True) for _ in range(min(workers, len(calls)))]
    for thread in threads:
        thread.start()
    try:
        for _ in calls:
            yield done.get()
    finally:
        stopping.set()
        for worker in list(running):
            worker.close()


def serve() -> None:
    """The worker's side: answer calls from standard input until it ends."""
    protocol_in = os.fdopen(os.dup(0), "rb")
    protocol_out = os.fdopen(os.dup(1), "wb")
    with open(os.devnull, "wb") as quiet:  # what a solver prints must not reach the pipe
        os.dup2(quiet.fileno(), 1)
        os.dup2(quiet.fileno(), 0)
    threading.Thread(target=_exit_when_orphaned, args=(int(sys.argv[1]),), daemon=True).start()
    if int(sys.argv[2]):
        use_threads(int(sys.argv[2]))
    while (message := _receive(protocol_in)) is not None:
        try:
            function, args = pickle.loads(message)  # imports the function's module
            answer = (True, function(*args))
        except Exception as error:  # raised again in the parent
            answer = (False, error)
        _send(protocol_out, pickle.dumps(answer))


def _send(pipe: BinaryIO, payload: bytes) -> None:
    try:
        pipe.write(HEADER.pack(len(payload)) + payload)
        pipe.flush()
    except (BrokenPipeError, ValueError, OSError):
        pass  # the other side is gone; its end shows as a missing answer


def _receive(pipe: BinaryIO) -> bytes | None:
    """One message, or None at the end of the pipe."""
    try:
        header = pipe.read(HEADER.size)
        if len(header) < HEADER.size:
            return None
        size = HEADER.unpack(header)[0]
        message = pipe.read(size)
    except (OSError, ValueError):
        return None
    return message if len(message) == size else None


def _exit_when_orphaned(parent: int) -> None:
    """Stop the worker when its parent is gone before it could close it."""
    while os.getppid() == parent:
        time.sleep(1.0)
    os._exit(1)


def _environment_finding_layerdef() -> dict[str, str]:
    """This process's environment with layerdef's own directory first on PYTHONPATH, so that
    the worker imports the same layerdef (an uninstalled checkout too)."""
    root = str(Path(__file__).resolve().parents[2])  # the folder that holds layerdef/
    paths = [root, *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(paths)}
