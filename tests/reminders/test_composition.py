"""The mails we send are assembled directly (headers folded here, parts encoded here), without
the stdlib's header parsing: they must be byte for byte what the stock composition makes
(``msg[name] = value``, ``set_content``, ``add_alternative``), boundary aside."""

from __future__ import annotations

import re
from collections.abc import Sequence
from email.headerregistry import Address
from email.message import EmailMessage

from hypothesis import given, settings
from hypothesis import strategies as st

from mailmentor.model import ActionKind, Person, Stage
from mailmentor.reminders import (
    MAIL_POLICY,
    build_give_up_notice,
    build_reminder,
    build_reply,
    header_text,
    thread_references,
)
from mailmentor.reminders.headers import Folded, folded_header
from mailmentor.reminders.messages import _new_message, _text_part
from mailmentor.reminders.wording import aware
from mailmentor.smtp import _flatten
from mailmentor.tokens import reply_address
from tests.reminders._support import make_action, make_ctx, make_loop

#: Text as it reaches headers: anything, hostile or not, in many scripts.
TEXT = st.text(
    alphabet=st.one_of(
        st.characters(min_codepoint=32, max_codepoint=126),
        st.sampled_from(list("äöüßéçñ€—“”·日本語中文한국어العربية  \t=?_")),
        st.characters(min_codepoint=0x80, max_codepoint=0x2FFF),
    ),
    max_size=140,
)
MESSAGE_ID = st.from_regex(r"[A-Za-z0-9._%+-]{1,40}@[A-Za-z0-9.-]{1,30}", fullmatch=True)


def stock_headers(ctx: object, subject: str, message_id: str, thread: Sequence[str], loop: object):  # type: ignore[no-untyped-def]
    """The headers as mailmentor set them before (the stock way, through the header registry)."""
    from email.utils import format_datetime

    msg = EmailMessage(policy=MAIL_POLICY)
    msg["From"] = Address(display_name="mailmentor", addr_spec=ctx.service_address)  # type: ignore[attr-defined]
    msg["To"] = Address(addr_spec=ctx.user_address)  # type: ignore[attr-defined]
    msg["Subject"] = header_text(subject)
    msg["Date"] = format_datetime(aware(ctx.now).astimezone(ctx.timezone))  # type: ignore[attr-defined]
    msg["Message-ID"] = f"<{message_id}>"
    if thread:
        msg["In-Reply-To"] = f"<{thread[-1]}>"
        msg["References"] = " ".join(f"<{i}>" for i in thread)
    if loop is not None:
        msg["Reply-To"] = reply_address(ctx.service_address, loop.id, ctx.secret)  # type: ignore[attr-defined]
        msg["X-Mailmentor-Loop"] = header_text(loop.id, limit=64)  # type: ignore[attr-defined]
    msg["Auto-Submitted"] = "auto-generated"
    msg["X-Auto-Response-Suppress"] = "All"
    return msg


def stock_composition(ours: EmailMessage) -> EmailMessage:
    """The stock composition of the same mail: our headers re-set the stock way (from their
    decoded values), the two bodies through set_content and add_alternative, same boundary."""
    msg = EmailMessage(policy=MAIL_POLICY)
    for name, value in ours.items():
        if not name.lower().startswith(("content-", "mime-")):
            msg[name] = str(value)
    text, html = ours.iter_parts()
    msg.set_content(text.get_content(), charset="utf-8")
    msg.add_alternative(html.get_content(), subtype="html", charset="utf-8")
    boundary = ours.get_boundary()
    assert boundary is not None
    msg.set_boundary(boundary)
    return msg


def flat(msg: EmailMessage) -> bytes:
    return _flatten(msg)


@settings(max_examples=300, deadline=None)
@given(
    subject=TEXT,
    name=TEXT,
    loop_id=st.from_regex(r"[a-z0-9]{1,70}", fullmatch=True),
    ids=st.lists(MESSAGE_ID, max_size=30),
)
def test_headers_are_what_the_stock_policy_writes(
    subject: str, name: str, loop_id: str, ids: list[str]
) -> None:
    ctx = make_ctx()
    loop = make_loop(id=loop_id, mentor=Person(address="alan@example.com", name=name))
    thread = thread_references(ids)
    message_id = f"mm.{loop_id}.x@example.com"
    ours = _new_message(ctx, subject=subject, message_id=message_id, thread=thread, loop=loop)
    stock = stock_headers(ctx, subject, message_id, thread, loop)
    assert flat(ours) == flat(stock)
    # ... and read back as the stock ones are
    for key in ("Subject", "From", "To", "Reply-To", "Message-ID", "References"):
        assert str(ours[key]) == str(stock[key])


@settings(max_examples=200, deadline=None)
@given(body=st.lists(TEXT, max_size=30).map("\n".join), subtype=st.sampled_from(["plain", "html"]))
def test_parts_are_what_set_content_makes(body: str, subtype: str) -> None:
    stock = EmailMessage(policy=MAIL_POLICY)
    stock.set_content(body, subtype=subtype, charset="utf-8")
    del stock["MIME-Version"]
    ours = _text_part(body, subtype, top=False)
    assert flat(ours) == flat(stock)
    assert ours.get_content() == stock.get_content()


def test_long_lines_and_many_lines_take_the_stock_encodings() -> None:
    for body in ("x" * 200, "é" * 200, "a\n" * 40 + "é", "日本語" * 30 + "\n" * 12, "plain\n"):
        stock = EmailMessage(policy=MAIL_POLICY)
        stock.set_content(body, charset="utf-8")
        del stock["MIME-Version"]
        assert flat(_text_part(body, "plain", top=False)) == flat(stock)


@settings(max_examples=60, deadline=None)
@given(subject=TEXT, name=TEXT, advice=TEXT)
def test_whole_reminders_are_the_stock_composition(subject: str, name: str, advice: str) -> None:
    loop = make_loop(
        subject=subject or "x",
        mentor=Person(address="alan@example.com", name=name),
        advice_excerpt=advice,
        message_ids=["ask1@example.com", "a" * 90 + "@example.com"],
    )
    for action in (make_action(Stage.ADVISED), make_action(kind=ActionKind.GIVE_UP)):
        ours = build_reminder(loop, action, make_ctx())
        assert flat(ours) == flat(stock_composition(ours))
        assert flat(ours) == flat(ours)  # flattening changes nothing


def test_every_kind_of_mail_is_the_stock_composition() -> None:
    loop = make_loop(subject="Préface — „Zitat“ =?utf-8?q?x?= " + "long " * 30)
    ctx = make_ctx()
    for msg in (
        build_reminder(loop, make_action(Stage.ADVISED), ctx),
        build_give_up_notice(loop, make_action(kind=ActionKind.GIVE_UP), ctx),
        build_reminder(loop, make_action(kind=ActionKind.STILL_RELEVANT), ctx),
        build_reply("in@example.com", "Re: help", "one\n\ntwo", ctx, loop),
        build_reply(None, "help", "one", ctx),
    ):
        assert flat(msg) == flat(stock_composition(msg))


def test_the_boundary_is_found_in_no_part() -> None:
    loop = make_loop(advice_excerpt="--=============== =====")
    msg = build_reminder(loop, make_action(), make_ctx())
    boundary = msg.get_boundary()
    assert boundary is not None and re.fullmatch(r"={15}\d{19}==", boundary)
    assert all(boundary not in str(part.get_payload()) for part in msg.iter_parts())


def test_folded_only_where_the_result_is_certain() -> None:
    assert folded_header("Reply-To", "a+b@example.com") == Folded("a+b@example.com")
    assert folded_header("Reply-To", '"a b"@example.com') is None  # quoted: the stock way
    assert folded_header("X-Mailmentor-Loop", "é") is None
    assert folded_header("X-Mailmentor-Loop", "x" * 80) is None  # too long for one line
    assert folded_header("Message-ID", "<café@example.com>") is None
