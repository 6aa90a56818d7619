"""parse_message and its header helpers: (input, expected) pairs and hand-written fixtures."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta, timezone

import pytest

from mailmentor.parsing.message import (
    MAX_TEXT,
    Address,
    decode_bytes,
    decode_words,
    html_to_text,
    normalize_address,
    parse_addresses,
    parse_date,
    parse_id_list,
    parse_message,
    parse_message_id,
    raw_headers,
    unflow,
)
from tests.parsing._support import fixture

# --- header helpers -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("plain text", "plain text"),
        ("=?utf-8?q?Caf=C3=A9?=", "Café"),
        ("=?UTF-8?B?SsO8cmdlbg==?=", "Jürgen"),
        ("=?utf-8?q?a?= =?utf-8?q?b?=", "ab"),  # whitespace between encoded words goes
        ("=?utf-8?q?a?= x =?utf-8?q?b?=", "a x b"),
        ("=?utf-8?b?w6k=?==?utf-8?b?w6k=?=", "éé"),
        ("=?utf-8?b?4oKs?=", "€"),
        ("=?utf-8?b?4oI=?= =?utf-8?b?rA==?=", "€"),  # a character split across two words
        ("=?x-unknown?q?Caf=C3=A9?=", "Café"),  # unknown charset: UTF-8 guess
        ("=?iso-8859-1?q?Fr=F6sche?=", "Frösche"),
        ("=?utf-8?b?!!!?=", ""),
        ("=?broken", "=?broken"),
        ("=?utf-8*en?q?hi?=", "hi"),  # RFC 2231 language tag
    ],
)
def test_decode_words(raw: str, expected: str) -> None:
    assert decode_words(raw) == expected


@pytest.mark.parametrize(
    ("data", "charset", "expected"),
    [
        ("Grüße".encode(), "utf-8", "Grüße"),
        ("Grüße".encode(), "iso-8859-1", "Grüße"),  # mislabelled UTF-8 is common
        ("Grüße".encode("latin-1"), "iso-8859-1", "Grüße"),
        ("Grüße".encode("latin-1"), None, "Grüße"),  # no charset: UTF-8, else cp1252
        ("€".encode("cp1252"), "us-ascii", "€"),
        ("привет".encode("koi8-r"), "KOI8-R", "привет"),
        ("日本".encode("shift_jis"), "x-sjis", "日本"),
        (b"abc", "rot13", "abc"),  # not a text codec: ignored
        (b"abc", '"utf-8"', "abc"),
        (b"\xff", "utf-8", "\ufffd"),
    ],
)
def test_decode_bytes(data: bytes, charset: str | None, expected: str) -> None:
    assert decode_bytes(data, charset) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("<abc@example.com>", "abc@example.com"),
        ("  <abc@example.com>  (comment)", "abc@example.com"),
        ("abc@example.com", "abc@example.com"),
        ("<abc @ example.com>", "abc@example.com"),
        ("<a@b>\r\n <c@d>", "a@b"),
        ("<>", None),
        ("", None),
        ("   ", None),
        ("<x\x00y@z>", "xy@z"),
    ],
)
def test_parse_message_id(raw: str, expected: str | None) -> None:
    assert parse_message_id(raw) == expected


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (["<a@x> <b@x>\r\n\t<c@x>"], ("a@x", "b@x", "c@x")),
        (["<a@x> <b@x> <a@x>"], ("a@x", "b@x")),
        (["a@x b@x"], ("a@x", "b@x")),
        (["Your message of Monday <a@x>"], ("a@x",)),
        (["no ids here"], ()),
        (["<a@x>", "<b@x>"], ("a@x", "b@x")),
    ],
)
def test_parse_id_list(values: list[str], expected: tuple[str, ...]) -> None:
    assert parse_id_list(values) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Mon, 5 Jan 2026 09:14:00 -0800", datetime(2026, 1, 5, 17, 14, tzinfo=UTC)),
        ("5 Jan 2026 09:14:00 GMT", datetime(2026, 1, 5, 9, 14, tzinfo=UTC)),
        ("Mon, 5 Jan 2026 09:14:00 -0000", datetime(2026, 1, 5, 9, 14, tzinfo=UTC)),  # naive
        ("Mon, 5 Jan 2026 09:14:00", datetime(2026, 1, 5, 9, 14, tzinfo=UTC)),
        ("not a date", None),
        ("", None),
        ("Mon, 32 Jan 2026 09:14:00 +0000", None),
        ("Mon, 5 Jan 99999 09:14:00 +0000", None),
    ],
)
def test_parse_date(raw: str, expected: datetime | None) -> None:
    parsed = parse_date(raw)
    assert parsed == expected
    if parsed is not None:
        assert parsed.tzinfo is not None


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Alan@Example.COM", "alan@example.com"),
        ("<alan@example.com>", "alan@example.com"),
        ("mailto:alan@example.com", "alan@example.com"),
        ("alan", ""),
        ("alan@@example.com", ""),
        ("al an@example.com", ""),
        ("", ""),
    ],
)
def test_normalize_address(raw: str, expected: str) -> None:
    assert normalize_address(raw) == expected


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (["Alan Kay <Alan@Example.com>"], (Address("alan@example.com", "Alan Kay"),)),
        (['"Kay, Alan" <a@x.org>, b@y.org'], (Address("a@x.org", "Kay, Alan"), Address("b@y.org"))),
        (["=?utf-8?q?J=C3=BCrgen?= <j@x.de>"], (Address("j@x.de", "Jürgen"),)),
        (
            ["=?utf-8?q?M=C3=BCller=2C_J=C3=BCrgen?= <j@x.de>"],
            (Address("j@x.de", "Müller, Jürgen"),),
        ),
        # Python 3.11 folding can hide "Name <addr>, " inside an encoded word: both come back.
        (
            ["Li <u3@ex.org>\r\n =?utf-8?q?=2C?= =?utf-8?q?Ana=C3=AFs?= Nin <u4@ex.org>"],
            (Address("u3@ex.org", "Li"), Address("u4@ex.org", "Anaïs Nin")),
        ),
        (
            ["=?utf-8?q?J=C3=BCrgen_=3Cj=40x=2Ede=3E=2C_Zo=C3=AB?= <z@x.de>"],
            (Address("j@x.de", "Jürgen"), Address("z@x.de", "Zoë")),
        ),
        (["=?utf-8?q?Evil=0D=0ABcc=3A_x=40y?= <e@x.org>"], (Address("e@x.org", "Evil Bcc: x@y"),)),
        (["undisclosed-recipients:;"], ()),
        (["alan@example.com (Alan Kay)"], (Address("alan@example.com", "Alan Kay"),)),
        (["Gr\udcc3\udcbc\udcc3\udc9fe <g@x.de>"], (Address("g@x.de", "Grüße"),)),  # raw UTF-8
        (["Not An Address"], (Address("", "Not An Address"),)),
        (["a@x.org\r\n\t, b@x.org"], (Address("a@x.org"), Address("b@x.org"))),
    ],
)
def test_parse_addresses(values: list[str], expected: tuple[Address, ...]) -> None:
    found = parse_addresses(values)
    assert found == expected
    for address in found:
        assert "\r" not in address.name and "\n" not in address.name


def test_unflow_joins_soft_breaks_but_keeps_signature_marker() -> None:
    text = "one two \r\nthree\r\n> quoted \r\n> more\r\n-- \r\nsig"
    assert unflow(text, delsp=False) == "one two three\n> quoted more\n-- \nsig"


@pytest.mark.parametrize(
    ("markup", "expected"),
    [
        ("<p>Hello</p><p>World</p>", "Hello\n\nWorld"),
        ("<div>Hi,</div><div><br></div><div>Cut the tiers.</div>", "Hi,\n\nCut the tiers."),
        ("a<br>b", "a\nb"),
        ("<style>x{}</style><script>evil()</script>Hi &amp; bye", "Hi & bye"),
        ("<div>On Mon, A wrote:</div><blockquote>old<br>text</blockquote>new", None),
        ("<b>unclosed", "unclosed"),
        ("", ""),
    ],
)
def test_html_to_text(markup: str, expected: str | None) -> None:
    text = html_to_text(markup)
    if expected is None:
        assert text.split("\n") == ["On Mon, A wrote:", "> old", "> text", "new"]
    else:
        assert text == expected


# --- whole messages from fixtures ----------------------------------------------------------------


def test_bcc_ask() -> None:
    parsed = parse_message(fixture("bcc_ask.eml"))
    assert parsed.message_id == "ask-1@example.org"
    assert parsed.sender == Address("grace@example.org", "Grace Hopper")
    assert parsed.to == (Address("linus@example.com", "Linus Torvalds"),)
    assert parsed.cc == (Address("grace+cc@example.org", "Hopper, Grace"),)
    assert parsed.delivered_to == ("mentor@mailmentor.example", "mentor+advice@mailmentor.example")
    assert parsed.subject == "How should I structure the team?"
    assert parsed.date == datetime(2026, 1, 4, 20, 0, tzinfo=timezone(timedelta(hours=1)))
    assert "How should I structure the \nteam" not in parsed.text  # format=flowed joined
    assert "How should I structure the team so that" in parsed.text
    assert parsed.reply_text.endswith("Thanks,\nGrace")  # the "-- " signature is gone
    assert parsed.automatic is None
    assert parsed.forwarded == ()
    assert parsed.all_thread_ids() == ("ask-1@example.org",)


def test_reply_threading_and_outlook_quote() -> None:
    parsed = parse_message(fixture("outlook_reply.eml"))
    assert parsed.in_reply_to == ("answer-1@mail.example.com",)
    assert parsed.references == (
        "root-1@example.org",
        "ask-1@example.org",
        "answer-1@mail.example.com",
    )
    assert parsed.all_thread_ids() == (
        "root-1@example.org",
        "ask-1@example.org",
        "answer-1@mail.example.com",
        "reply-2@example.org",
    )
    assert parsed.reply_text == "Done: two teams since Monday. Thank you!"
    assert parsed.forwarded == ()  # "RE:" + Outlook block is quoted history, not a forward


def test_missing_message_id_is_derived_and_stable() -> None:
    raw = fixture("missing_message_id.eml")
    parsed = parse_message(raw)
    assert parsed.message_id == f"derived-{hashlib.sha256(raw).hexdigest()[:24]}@mailmentor"
    assert parse_message(raw).message_id == parsed.message_id
    assert parsed.date is None  # "not a date at all"
    assert parsed.all_thread_ids() == (parsed.message_id,)


def test_empty_message_id_header_is_derived() -> None:
    parsed = parse_message(b"Message-ID: <>\r\nSubject: x\r\n\r\nbody")
    assert parsed.message_id.startswith("derived-")


def test_unknown_charset_falls_back_to_utf8() -> None:
    parsed = parse_message(fixture("unknown_charset.eml"))
    assert parsed.subject == "Café talk"
    assert parsed.sender == Address("jurgen@example.de", "Jürgen")
    assert parsed.text == "Grüße aus München."


def test_broken_base64_keeps_what_decodes() -> None:
    parsed = parse_message(fixture("broken_base64.eml"))
    assert parsed.text.startswith("Hello Linus, this is")


@pytest.mark.parametrize(
    ("raw", "subject"),
    [
        # A bare CR ends a header line for the parser: "Bcc" becomes a header nobody reads.
        (b"From: a@x.org\r\nSubject: hi\rBcc: victim@x.org\r\n\r\nbody", "hi"),
        (
            b"From: a@x.org\r\nSubject: =?utf-8?q?hi=0D=0ABcc=3A_victim=40x=2Eorg?=\r\n\r\nbody",
            "hi Bcc: victim@x.org",
        ),
        (
            b"From: a@x.org\r\nSubject: =?utf-8?b?aGkNCkJjYzogdmljdGltQHgub3Jn?=\r\n\r\nbody",
            "hi Bcc: victim@x.org",
        ),
        (
            b"From: a@x.org\r\nSubject: hi\x00\x1b[31m\xe2\x80\xa8Bcc: victim@x.org\r\n\r\nb",
            "hi [31m Bcc: victim@x.org",
        ),
    ],
)
def test_header_injection_is_neutralised(raw: bytes, subject: str) -> None:
    parsed = parse_message(raw)
    assert parsed.subject == subject
    for char in "\r\n\x00\x1b\x85\u2028":
        assert char not in parsed.subject


def test_hostile_display_name_is_cleaned() -> None:
    raw = b"From: =?utf-8?q?Eve=0D=0ATo=3A_x=40y=E2=80=AEgnp?= <eve@x.org>\r\n\r\nbody"
    sender = parse_message(raw).sender
    assert sender is not None and sender.address == "eve@x.org"
    assert sender.name == "Eve To: x@y gnp"


def nested(depth: int) -> bytes:
    """A multipart nested ``depth`` levels deep with a text part at the bottom."""
    head = b"From: a@x.org\r\nMessage-ID: <deep@x.org>\r\nSubject: deep\r\nMIME-Version: 1.0\r\n"
    opening = b"".join(
        b"Content-Type: multipart/mixed; boundary=b%d\r\n\r\n--b%d\r\n" % (i, i)
        for i in range(depth)
    )
    leaf = b"Content-Type: text/plain\r\n\r\nbottom text\r\n"
    closing = b"".join(b"--b%d--\r\n" % i for i in reversed(range(depth)))
    return head + opening + leaf + closing


@pytest.mark.parametrize("depth", [5, 19, 60, 2000])
def test_deep_nesting_is_bounded(depth: int) -> None:
    parsed = parse_message(nested(depth))
    assert parsed.message_id == "deep@x.org"
    assert parsed.subject == "deep"
    if depth < 20:
        assert parsed.text == "bottom text"
    else:
        assert parsed.text == ""  # deeper than MAX_DEPTH is not walked


def test_huge_body_is_bounded() -> None:
    body = b"word " * 1_000_000  # 5 MB of text
    parsed = parse_message(b"From: a@x.org\r\nSubject: big\r\n\r\n" + body)
    assert len(parsed.text) <= MAX_TEXT
    assert len(parsed.reply_text) <= MAX_TEXT
    assert parsed.text.startswith("word word")


def test_many_parts_are_bounded() -> None:
    parts = b"".join(b"--b\r\nContent-Type: text/plain\r\n\r\npart %d\r\n" % i for i in range(3000))
    raw = b"Content-Type: multipart/mixed; boundary=b\r\n\r\n" + parts + b"--b--\r\n"
    parsed = parse_message(raw)
    assert parsed.text.startswith("part 0")
    assert len(parsed.text) <= MAX_TEXT


def test_html_alternative_prefers_plain_and_html_only_is_converted() -> None:
    both = parse_message(fixture("gmail_forward.eml"))
    html_only = parse_message(fixture("gmail_html_only_forward.eml"))
    assert both.text.startswith("Alan's answer, worth acting on.")
    assert html_only.text.startswith("Alan's answer, worth acting on.")
    assert "alert" not in html_only.text and "color: red" not in html_only.text
    assert both.reply_text == html_only.reply_text == "Alan's answer, worth acting on."


@pytest.mark.parametrize("raw", [b"", b"\r\n", b"garbage", b"\xff\xfe\x00", b"From:\r\n\r\n"])
def test_degenerate_input_gives_a_record(raw: bytes) -> None:
    parsed = parse_message(raw)
    assert parsed.message_id.startswith("derived-")
    assert parsed.sender is None
    assert parsed.forwarded == ()


def test_bytearray_and_memoryview_are_accepted() -> None:
    raw = fixture("bcc_ask.eml")
    assert parse_message(bytearray(raw)) == parse_message(raw)  # type: ignore[arg-type]
    assert parse_message(memoryview(raw)) == parse_message(raw)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("to", "expected"),
    [
        # An injected line folded into To: the stdlib would glue "alan@example.orgbcc".
        (b"alan@example.org\r\n\tBcc: eve@x.net", ["alan@example.org", "eve@x.net"]),
        (b"Alan <alan@example.org>\r\n\tBcc: eve@x.net", ["alan@example.org", "eve@x.net"]),
        (
            b"alan@example.org, bob@x.org junk, <c@d.org> e@f.org",
            ["alan@example.org", "bob@x.org", "c@d.org", "e@f.org"],
        ),
        # Obsolete syntax the stdlib rightly joins is kept.
        (b'alan @ example.org, "Smith, B" <b@x.org>', ["alan@example.org", "b@x.org"]),
        (b'"Smith, B" <b@x.org> (a comment), d@e.org', ["b@x.org", "d@e.org"]),
    ],
)
def test_addresses_are_never_glued_from_separate_words(to: bytes, expected: list[str]) -> None:
    parsed = parse_message(b"From: a@x.org\r\nTo: " + to + b"\r\nSubject: s\r\n\r\nbody")
    assert [a.address for a in parsed.to] == expected


def test_raw_headers_are_every_value_in_order_whatever_the_case_of_the_name() -> None:
    from email import policy
    from email.parser import BytesParser

    raw = (
        b"Received: from a\r\nreceived: from b\r\nFrom: Ada <ada@example.com>\r\n"
        b" RECEIVED : from c\r\nSubject: hi\r\n\r\nbody\r\n"
    )
    msg = BytesParser(policy=policy.compat32).parsebytes(raw)
    plain = [str(v) for k, v in msg.raw_items() if k.strip().lower() == "received"]
    assert raw_headers(msg, "Received") == plain == ["from a", "from b"]
    assert raw_headers(msg, "RECEIVED") == plain  # the same index, read again
    assert raw_headers(msg, "x-missing") == []
    msg["X-Added"] = "later"  # a header added after the first read is seen
    assert raw_headers(msg, "x-added") == ["later"]
    values = raw_headers(msg, "received")
    values.append("changed by the caller")
    assert raw_headers(msg, "received") == plain
