"""Dramatiq actors: send reminders, short replies and the weekly digest. Retries only for
temporary failures."""

from __future__ import annotations

import logging

import dramatiq
import redis

from mailmentor.errors import TemporarySendError
from workers import broker as _broker_setup
from workers import runtime

log = logging.getLogger("mailmentor.actors")

if _broker_setup._broker is None:  # imported by the dramatiq CLI: configure from settings
    _broker_setup.ensure()


def _retry_when(retries: int, exc: Exception) -> bool:
    """4xx and dropped connections are worth retrying (with backoff); nothing else is."""
    return retries < 12 and isinstance(exc, TemporarySendError | redis.ConnectionError)


@dramatiq.actor(
    queue_name="mailmentor", retry_when=_retry_when, min_backoff=2_000, max_backoff=600_000
)
def deliver_reminder(loop_id: str, action_key: str) -> None:
    log.info("%s", runtime.service().deliver(loop_id, action_key))


@dramatiq.actor(
    queue_name="mailmentor", retry_when=_retry_when, min_backoff=2_000, max_backoff=600_000
)
def send_reply(message: str, key: str) -> None:
    log.info("%s", runtime.service().send_reply(message, key))


@dramatiq.actor(
    queue_name="mailmentor", retry_when=_retry_when, min_backoff=2_000, max_backoff=600_000
)
def send_digest(slot: str) -> None:
    log.info("%s", runtime.service().send_digest(slot))


ALL = (deliver_reminder, send_reply, send_digest)


class DramatiqOutbox:
    """The Service's outbox: work goes onto the Redis queue for the actors."""

    def deliver_later(self, loop_id: str, action_key: str) -> None:
        deliver_reminder.send(loop_id, action_key)

    def reply_later(self, message: str, key: str) -> None:
        send_reply.send(message, key)

    def digest_later(self, slot: str) -> None:
        send_digest.send(slot)
