"""Intake on the real store: typed outcomes, once per message, and mail that must start nothing."""

from __future__ import annotations

from email.message import EmailMessage

from mailmentor.app import Services
from mailmentor.mailbox_mode import Origin
from mailmentor.model import Stage
from mailmentor.parsing.message import parse_message
from mailmentor.service.outcomes import Advised, Created, Duplicate, Handled, Ignored
from mailmentor.store import Store
from tests import mail_factory as mf
from tests.service._support import shipped
from tests.service_factory import services_on
from tests.store_support import all_loops


def test_outcomes_are_typed_and_a_repeat_is_a_duplicate(store: Store) -> None:
    services = services_on(store, mf.USER, mf.SERVICE, rules=shipped())
    first = services.intake.handle(parse_message(mf.ask()), Origin.SERVICE)
    assert isinstance(first, Handled)
    (created,) = first.effects
    assert isinstance(created, Created) and created.stage is Stage.ASKED
    assert str(first) == f"new advice loop {created.loop_id} with {mf.MENTOR_ADDRESS}"
    assert services.intake.handle(parse_message(mf.ask()), Origin.SERVICE) == Duplicate()
    advice = services.intake.handle(parse_message(mf.gmail_forward()), Origin.SERVICE)
    assert isinstance(advice, Handled) and advice.effects == (
        Advised(created.loop_id, Stage.ADVISED),
    )


def test_a_forwarded_bounce_is_not_a_mentors_advice(store: Store) -> None:
    services = services_on(store, mf.USER, mf.SERVICE, rules=shipped())
    raw = mf.gmail_forward().replace(
        b"From: Alan Kay <alan@example.org>",
        b"From: Mail Delivery System <MAILER-DAEMON@mx.example>",
    )
    outcome = services.intake.handle(parse_message(raw), Origin.SERVICE)
    assert isinstance(outcome, Ignored) and "automatic mail" in outcome.reason
    assert all_loops(store) == []


def verifying(store: Store) -> Services:
    """Mailbox mode's service with REQUIRE_AUTHENTICATION on, vouched for by mx.example.com."""
    return services_on(
        store,
        mf.USER,
        "ada+mentor@example.com",
        rules=shipped(),
        require_authentication=True,
        authserv_id="mx.example.com",
    )


def marked_ask(authentication: str) -> bytes:
    msg = EmailMessage()
    msg["Authentication-Results"] = authentication
    msg["From"] = f"Ada <{mf.USER}>"
    msg["To"] = mf.MENTOR
    msg["Subject"] = "Advice on pricing page?"
    msg["Message-ID"] = "<marked-ask@client.example>"
    msg.set_content("Alan, what would you change first?\n")
    return bytes(msg)


def test_require_authentication_holds_for_marked_mail_in_mailbox_mode(store: Store) -> None:
    """Found in the issue: a tracked message from the user's address that failed the
    Authentication-Results check became outgoing mail anyway."""
    services = verifying(store)
    forged = marked_ask("mx.example.com; dkim=fail; spf=fail smtp.mailfrom=example.com")
    outcome = services.intake.handle(parse_message(forged), Origin.TRACKED)
    assert isinstance(outcome, Ignored) and "not verified" in outcome.reason
    assert all_loops(store) == []
    vouched = marked_ask("mx.example.com; dkim=pass header.d=example.com")
    assert isinstance(services.intake.handle(parse_message(vouched), Origin.TRACKED), Handled)


def test_the_users_own_sent_mail_needs_no_receiving_server(store: Store) -> None:
    """A marked ask in Sent carries no Authentication-Results (no server received it): it is the
    user's own by where it sits."""
    services = verifying(store)
    sent = parse_message(mf.ask())
    assert isinstance(services.intake.handle(sent, Origin.TRACKED, in_sent=True), Handled)
    unmarked_elsewhere = parse_message(mf.ask("<other@client.example>"))
    outcome = services.intake.handle(unmarked_elsewhere, Origin.TRACKED)
    assert isinstance(outcome, Ignored) and "not verified" in outcome.reason
