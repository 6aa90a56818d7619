"""The service's parts on the real store for tests that need intake but no mail servers."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mailmentor.app import Services, build_services
from mailmentor.clock import ManualClock
from mailmentor.mailbox_mode import Origin
from mailmentor.parsing.message import ParsedMessage
from mailmentor.parsing.pool import ParsePool
from mailmentor.rules import Rules, default_rules_dir, load_rules
from mailmentor.service.outcomes import Outcome
from mailmentor.settings import Settings, load_settings
from mailmentor.smtp import SmtpAccount
from mailmentor.store import Store
from tests import mail_factory as mf

OWNER = "test-host:1:0:0"


class RecordingDispatch:
    """Collects what the service would queue for the send actors (no SMTP needed here)."""

    def __init__(self) -> None:
        self.deliveries: list[tuple[str, str]] = []
        self.jobs: list[str] = []

    def deliver_later(self, loop_id: str, action_key: str) -> None:
        self.deliveries.append((loop_id, action_key))

    def send_later(self, job_key: str) -> None:
        self.jobs.append(job_key)

    @property
    def replies(self) -> list[str]:
        return [k for k in self.jobs if k.startswith("reply:")]

    @property
    def digests(self) -> list[str]:
        return [k.removeprefix("digest:") for k in self.jobs if k.startswith("digest:")]


def test_settings(user: str, service_address: str, **overrides: object) -> Settings:
    """Settings built from arguments only (nothing from the environment or a .env file)."""
    values: dict[str, object] = {
        "service_address": service_address,
        "user_addresses": ["placeholder@mailmentor.example"],
        "secret_key": "test",
        "timezone": "UTC",
        "smtp_host": "127.0.0.1",
        "smtp_port": 1,
        "smtp_security": "none",
    }
    values.update(overrides)
    # Real-world corpora have senders the settings would refuse ("x@y"): set the user as given.
    return Settings.model_validate(values).model_copy(update={"user_addresses": [user.lower()]})


def stack_settings(redis_url: str, data_dir: Path, **overrides: Any) -> Settings:
    """Settings for a test's own Stack on the suite's Redis: no mail accounts of its own (the
    test hands the stack its servers), the test mail's service and user addresses."""
    return load_settings(
        redis_url=redis_url,
        imap_host="",
        smtp_host="",
        data_dir=data_dir,
        service_address=mf.SERVICE,
        user_addresses=[mf.USER],
        secret_key="test-secret",
        **overrides,
    )


def services_on(
    store: Store,
    user: str,
    service_address: str = "mentor@mailmentor.example",
    *,
    clock: ManualClock | None = None,
    rules: Rules | None = None,
    smtp: SmtpAccount | None = None,
    parser: ParsePool | None = None,
    **settings: object,
) -> Services:
    """The shipped rules, a ManualClock, and a dispatch that records instead of sending."""
    shipped = rules or load_rules(default_rules_dir())
    services = build_services(
        test_settings(user, service_address, **settings),
        store,
        RecordingDispatch(),
        clock or ManualClock(datetime(2026, 1, 5, 9, 0, tzinfo=UTC)),
        rules=lambda: shipped,
        smtp=smtp,
        owner=OWNER,
        parser=parser,
    )
    return services


def dispatch_of(services: Services) -> RecordingDispatch:
    dispatch = services.scheduler.dispatch
    assert isinstance(dispatch, RecordingDispatch)
    return dispatch


def handle(services: Services, msg: ParsedMessage, origin: Origin = Origin.SERVICE) -> Outcome:
    return services.intake.handle(msg, origin)
