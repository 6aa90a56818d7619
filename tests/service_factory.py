"""A Service on the real store for tests that need intake but no mail servers."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from mailmentor.clock import ManualClock
from mailmentor.intake import Identity
from mailmentor.rules import default_rules_dir, load_rules
from mailmentor.service import Service
from mailmentor.smtp import SmtpAccount
from mailmentor.store import Store


class RecordingOutbox:
    """Collects what the service would queue for the send actors (no SMTP needed here)."""

    def __init__(self) -> None:
        self.deliveries: list[tuple[str, str]] = []
        self.replies: list[str] = []
        self.digests: list[str] = []

    def deliver_later(self, loop_id: str, action_key: str) -> None:
        self.deliveries.append((loop_id, action_key))

    def reply_later(self, message: str, key: str) -> None:
        self.replies.append(key)

    def digest_later(self, slot: str) -> None:
        self.digests.append(slot)


def service_on(
    store: Store, user: str, service_address: str = "mentor@mailmentor.example"
) -> Service:
    """The shipped rules, a ManualClock, and an outbox that records instead of sending."""
    rules = load_rules(default_rules_dir())
    return Service(
        store=store,
        rules=lambda: rules,
        clock=ManualClock(),
        identity=Identity(user_addresses=(user,), service_address=service_address),
        secret=b"test",
        timezone=ZoneInfo("UTC"),
        outbox=RecordingOutbox(),
        smtp=SmtpAccount(host="127.0.0.1", port=1, security="none"),
    )
