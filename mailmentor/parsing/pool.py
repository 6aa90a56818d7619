"""Parsing a fetch batch in other processes while intake works through it, in UID order.

Parsing is pure and about half of what ingest spends on a message; the other half (the store,
deciding) stays in the watcher's thread. Handing a batch's messages to worker processes as soon
as they are fetched lets both halves run at once where a core is free. Small batches (a message
picked up from IDLE) are parsed in place: a trip to another process would only add latency.

What intake sees is unchanged: the same `ParsedMessage`, or the same exception, because a
message whose parse failed in a worker (or whose worker died) is parsed again in place.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from mailmentor.parsing.message import ParsedMessage, parse_message

log = logging.getLogger("mailmentor.parsing")

#: Batches smaller than this are parsed in the watcher's own thread.
MIN_BATCH = 4


def default_workers() -> int:
    """One core for the watcher's thread, the rest (at most 4) for parsing ahead."""
    return max(0, min(4, (os.cpu_count() or 1) - 1))


class ParsePool:
    """``parse(raw)`` for messages announced by ``ahead(raws)`` comes from worker processes.

    Started on the first batch worth it, so a process that never reads many messages at once
    never starts one; batches go on being parsed here until the workers are up. Safe to share
    between watcher threads; ``close()`` is final.
    """

    def __init__(
        self,
        workers: int,
        *,
        min_batch: int = MIN_BATCH,
        parse: Callable[[bytes], ParsedMessage] = parse_message,
    ) -> None:
        self.workers = workers
        self._min_batch = max(1, min_batch)
        self._parse = parse
        self._lock = threading.Lock()
        self._executor: ProcessPoolExecutor | None = None
        self._warm: Future[None] | None = None  # done once the workers can take work
        self._closed = False
        self.parsed_ahead = 0  # messages whose parse came from a worker
        # id(raw) -> (raw, its parse); the raw is kept so the id stays its own
        self._pending: dict[int, tuple[bytes, Future[ParsedMessage]]] = {}

    def ahead(self, raws: Iterable[bytes]) -> None:
        """Start parsing these messages (a fetched batch) in the workers, if worth it."""
        batch = list(raws)
        if self.workers <= 0 or len(batch) < self._min_batch:
            return
        with self._lock:
            try:
                executor = self._started()
            except Exception as exc:  # no processes to be had here: parse in place
                self._broken(exc)
                return
            if executor is None or self._warm is None or not self._warm.done():
                return  # parsed here while the workers start (a second or so)
            for future in [f for _, f in self._pending.values()]:
                future.cancel()  # an earlier batch left unfinished (a stop, a lost lease)
            self._pending.clear()
            try:
                for raw in batch:
                    self._pending[id(raw)] = (raw, executor.submit(self._parse, raw))
            except Exception as exc:  # a broken pool: parse in place from now on
                self._broken(exc)

    def parse(self, raw: bytes) -> ParsedMessage:
        """The parsed message: from a worker when announced, else (or on any trouble) here."""
        with self._lock:
            entry = self._pending.pop(id(raw), None)
        if entry is not None and entry[0] is raw:
            try:
                parsed = entry[1].result()
                self.parsed_ahead += 1
                return parsed
            except BrokenProcessPool as exc:
                with self._lock:
                    self._broken(exc)
            except Exception:
                pass  # a parse that failed there fails here too, raising what intake expects
        return self._parse(raw)

    def ready(self, timeout: float | None = None) -> bool:
        """Start the workers now and wait until they take work (False: not by ``timeout``)."""
        with self._lock:
            if self.workers <= 0 or self._started() is None:
                return False
            warm = self._warm
        try:
            if warm is not None:
                warm.result(timeout)
        except Exception:
            return False
        return warm is not None

    def close(self) -> None:
        with self._lock:
            self._closed = True
            executor, self._executor = self._executor, None
            self._pending.clear()
        if executor is not None:
            executor.shutdown(wait=True, cancel_futures=True)

    def _started(self) -> ProcessPoolExecutor | None:
        if self._executor is None and not self._closed:
            # spawn, not fork: this process has threads (watchers, senders, the scheduler)
            self._executor = ProcessPoolExecutor(
                self.workers,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_worker_start,
                initargs=(os.getpid(),),
            )
            self._warm = self._executor.submit(_ready)
            log.debug("parsing ahead in %d worker process(es)", self.workers)
        return self._executor

    def _broken(self, exc: BaseException) -> None:
        """Stop using the workers; parsing goes on in place."""
        if self.workers > 0:
            log.warning("parse workers failed (%s); parsing in the watcher from now on", exc)
        self.workers = 0
        self._pending.clear()
        executor, self._executor = self._executor, None
        self._warm = None
        if executor is not None:
            executor.shutdown(wait=False, cancel_futures=True)


def _ready() -> None:
    """A first task: done once a worker has started and imported the parser."""


def _worker_start(parent: int) -> None:
    """Ctrl-C is the parent's to handle; a worker outlives no parent (even one killed -9)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    threading.Thread(target=_exit_with, args=(parent,), daemon=True).start()


def _exit_with(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(1.0)
    os._exit(0)
