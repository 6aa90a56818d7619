"""The dramatiq actors that send: reminders, and the outbox's jobs (replies, digests, drafts).

Declared on a broker that is handed in, bound to a Sender that is handed in (`Actors.bind`);
nothing here is built at import time and nothing is looked up through globals. An expected
temporary failure (SMTP 4xx or unreachable, Redis unavailable, another worker busy with the same
item) is one WARNING line naming the next try; tracebacks only for the unexpected.
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable
from typing import Any

import dramatiq
from dramatiq.middleware import CurrentMessage

from mailmentor.backoff import backoff_delay
from mailmentor.errors import SendBusy, TemporarySendError
from mailmentor.service.sender import Sender, SendOutcome
from mailmentor.store.client import is_transient
from workers.broker import QUEUE

log = logging.getLogger("mailmentor.actors")

#: Temporary failures are tried again this often (about 2 h of backoff in all); after that the
#: claim's lease brings the item back to the scheduler, so nothing is dropped.
MAX_TRIES = 20
MIN_BACKOFF_S = 2.0
MAX_BACKOFF_S = 600.0


def backoff_ms(tries: int) -> int:
    """Exponential backoff with jitter (50–100 % of 2 s × 2^tries, at most 10 minutes)."""
    return int(backoff_delay(tries, MIN_BACKOFF_S, MAX_BACKOFF_S, random.random()) * 1000)


class Busy(dramatiq.Retry):
    """Another live sender has the item: check again later, however often (its mark ends with
    its send, or after SEND_LEASE should it die); this does not use up the item's tries."""


def _retry_when(retries: int, exc: BaseException) -> bool:
    return isinstance(exc, Busy) or (retries < MAX_TRIES and isinstance(exc, dramatiq.Retry))


def _tries() -> int:
    message = CurrentMessage.get_current_message()
    return int(message.options.get("retries", 0)) if message is not None else 0


def run_send(what: str, send: Callable[[], SendOutcome]) -> None:
    """Run one send; expected temporary failures become one WARNING and a dramatiq Retry."""
    try:
        outcome = send()
    except SendBusy as exc:
        delay = backoff_ms(0)
        log.info("%s: being sent by %s; checking again in %.0f s", what, exc.holder, delay / 1000)
        raise Busy(str(exc), delay=delay) from None
    except Exception as exc:
        if not (isinstance(exc, TemporarySendError) or is_transient(exc)):
            raise
        tries = _tries()
        delay = backoff_ms(tries)
        reason = " ".join(str(exc).split())[:300] or type(exc).__name__
        if tries + 1 >= MAX_TRIES:
            log.warning("%s: %s; giving up for now, the scheduler brings it back", what, reason)
        else:
            log.warning("%s: %s; try %d again in %.0f s", what, reason, tries + 2, delay / 1000)
        raise dramatiq.Retry(reason, delay=delay) from None
    log.info("%s: %s", what, outcome)


class _Connections(dramatiq.Middleware):
    """Each send worker thread keeps one SMTP session, closed when the thread stops."""

    def __init__(self, actors: Actors) -> None:
        self._actors = actors

    def after_worker_thread_boot(self, broker: Any, thread: Any) -> None:
        self._actors._worker_thread.active = True

    def before_worker_thread_shutdown(self, broker: Any, thread: Any) -> None:
        self._actors._worker_thread.active = False
        if self._actors._sender is not None:
            self._actors._sender.close_connection()


class Actors:
    """The send actors on one broker, and the scheduler's Dispatch onto them."""

    def __init__(self, broker: Any) -> None:
        self._sender: Sender | None = None
        #: Set in dramatiq's worker threads: they keep an SMTP session (see _Connections).
        self._worker_thread = threading.local()
        broker.add_middleware(_Connections(self))
        options: dict[str, Any] = {
            "broker": broker,
            "queue_name": QUEUE,
            "retry_when": _retry_when,
            "max_retries": MAX_TRIES,
        }
        self.deliver_reminder = dramatiq.actor(actor_name="deliver_reminder", **options)(
            self._deliver
        )
        self.send_job = dramatiq.actor(actor_name="send_job", **options)(self._send_job)
        # Layout 1 queued replies and digests under these names: an upgrade with some still in
        # the queue sends them instead of dropping them.
        self.send_reply = dramatiq.actor(actor_name="send_reply", **options)(self._legacy_reply)
        self.send_digest = dramatiq.actor(actor_name="send_digest", **options)(self._legacy_digest)

    def bind(self, sender: Sender) -> None:
        self._sender = sender

    @property
    def sender(self) -> Sender:
        if self._sender is None:
            raise RuntimeError("send actors used before a Sender was bound to them")
        if getattr(self._worker_thread, "active", False):
            self._sender.keep_connection()
        return self._sender

    def _deliver(self, loop_id: str, action_key: str) -> None:
        run_send(
            f"reminder {loop_id}:{action_key}", lambda: self.sender.deliver(loop_id, action_key)
        )

    def _send_job(self, key: str) -> None:
        run_send(key, lambda: self.sender.send_job(key))

    def _legacy_reply(self, message: str, key: str) -> None:
        run_send(key, lambda: self.sender.adopt(key, {"kind": "reply", "message": message}))

    def _legacy_digest(self, slot: str) -> None:
        key = f"digest:{slot}"
        run_send(key, lambda: self.sender.adopt(key, {"kind": "digest", "slot": slot}))

    # Dispatch
    def deliver_later(self, loop_id: str, action_key: str) -> None:
        self.deliver_reminder.send(loop_id, action_key)

    def send_later(self, job_key: str) -> None:
        self.send_job.send(job_key)
