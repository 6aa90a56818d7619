"""Nothing a mailbox holds may make parsing raise: real corpora and generated hostile input."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailmentor.parsing.commands import CommandName, parse_command
from mailmentor.parsing.message import MAX_TEXT, ParsedMessage, parse_message
from mailmentor.parsing.quoting import excerpt, strip_quoted
from tests.parsing._support import FIXTURES, corpus

FIXTURE_BYTES = [path.read_bytes() for path in sorted(FIXTURES.glob("*.eml"))]
CORPORA_WITH_MESSAGES = ("cpython-test_email", "mikel-mail", "stalwart-mail-parser")


def check_invariants(parsed: ParsedMessage) -> None:
    """What every consumer may rely on, whatever the input was."""
    assert parsed.message_id and not any(c in parsed.message_id for c in " <>\r\n")
    assert "\r" not in parsed.subject and "\n" not in parsed.subject
    assert len(parsed.text) <= MAX_TEXT and len(parsed.reply_text) <= MAX_TEXT
    for address in (parsed.sender, *parsed.to, *parsed.cc):
        if address is not None:
            assert address.address == address.address.lower()
            assert "\n" not in address.name and "\r" not in address.name
    for value in (*parsed.references, *parsed.in_reply_to):
        assert value and "<" not in value and ">" not in value
    for when in (parsed.date, *(f.date for f in parsed.forwarded)):
        assert when is None or (isinstance(when, datetime) and when.tzinfo is not None)
    for forward in parsed.forwarded:
        assert len(forward.text) <= MAX_TEXT
    assert len(parsed.all_thread_ids()) == len(set(parsed.all_thread_ids()))


def _corpus_files() -> list[Path]:
    files: list[Path] = []
    for name in CORPORA_WITH_MESSAGES:
        files.extend(path for path in sorted(corpus(name).rglob("*")) if path.is_file())
    return files


def test_corpora_never_raise() -> None:
    files = _corpus_files()
    assert len(files) > 200
    for path in files:
        parsed = parse_message(path.read_bytes())
        check_invariants(parsed)
        parse_command(parsed.reply_text)


def test_corpora_known_answers() -> None:
    """A few spot checks so "never raises" does not hide "parses nothing"."""
    reports = sorted((corpus("mikel-mail") / "multipart_report_emails").glob("*.eml"))
    assert reports
    for path in reports:
        assert parse_message(path.read_bytes()).automatic is not None, path.name
    rfc = corpus("stalwart-mail-parser") / "rfc" / "002.eml"
    forwarded = parse_message(rfc.read_bytes()).forwarded
    assert [f.sender.address for f in forwarded if f.sender] == ["president@whitehouse.gov"]


# --- generated input ----------------------------------------------------------------------------

Mutation = tuple[str, int, int, bytes]
_mutation = st.one_of(
    st.tuples(st.just("flip"), st.integers(0, 1 << 16), st.integers(1, 255), st.just(b"")),
    st.tuples(
        st.just("insert"), st.integers(0, 1 << 16), st.just(0), st.binary(min_size=1, max_size=40)
    ),
    st.tuples(st.just("delete"), st.integers(0, 1 << 16), st.integers(1, 200), st.just(b"")),
)
_NASTY = [b"\r", b"\n", b"\x00", b"=?", b"?=", b"<", b">", b"--", b"boundary=", b"\xff", b";", b":"]


def _mutate(raw: bytes, mutations: list[Mutation]) -> bytes:
    data = bytearray(raw)
    for kind, position, number, piece in mutations:
        at = position % (len(data) + 1)
        if kind == "flip" and data:
            data[at % len(data)] ^= number
        elif kind == "insert":
            data[at:at] = piece
        elif kind == "delete":
            del data[at : at + number]
    return bytes(data)


SETTINGS = settings(
    max_examples=200,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)


@SETTINGS
@given(
    base=st.sampled_from(FIXTURE_BYTES),
    mutations=st.lists(_mutation, max_size=8),
    nasty=st.lists(st.tuples(st.integers(0, 1 << 16), st.sampled_from(_NASTY)), max_size=4),
)
def test_mutated_fixtures_never_raise(
    base: bytes, mutations: list[Mutation], nasty: list[tuple[int, bytes]]
) -> None:
    raw = _mutate(base, mutations + [("insert", at, 0, piece) for at, piece in nasty])
    parsed = parse_message(raw)
    check_invariants(parsed)
    parse_command(parsed.reply_text)


_header_value = st.one_of(
    st.text(max_size=200),
    st.binary(max_size=200).map(lambda b: b.decode("latin-1")),
    st.sampled_from(["=?utf-8?b?!!?=", "=?x?q?=ZZ?=", "<<<>>>", "a@b, @, <@>", "=?utf-8?q?", "\\"]),
)
_header_name = st.sampled_from(
    ["From", "To", "Cc", "Subject", "Date", "Message-ID", "References", "In-Reply-To",
     "Content-Type", "Content-Transfer-Encoding", "Content-Disposition", "Auto-Submitted",
     "Precedence", "Return-Path", "Delivered-To", "X-Auto-Response-Suppress"]
)  # fmt: skip


@SETTINGS
@given(
    headers=st.lists(st.tuples(_header_name, _header_value), max_size=12),
    body=st.text(max_size=500),
)
def test_random_headers_never_raise(headers: list[tuple[str, str]], body: str) -> None:
    raw = b"".join(
        name.encode() + b": " + value.encode("utf-8", "surrogatepass") + b"\r\n"
        for name, value in headers
    )
    parsed = parse_message(raw + b"\r\n" + body.encode("utf-8", "surrogatepass"))
    check_invariants(parsed)


@SETTINGS
@given(st.text(max_size=400))
def test_text_functions_never_raise(text: str) -> None:
    command = parse_command(text)
    assert command is None or isinstance(command.name, CommandName)
    stripped = strip_quoted(text)
    assert len(stripped) <= len(text) + 1
    assert len(excerpt(text, 80)) <= 80


@pytest.mark.parametrize("raw", FIXTURE_BYTES)
def test_every_prefix_of_a_fixture_parses(raw: bytes) -> None:
    """Truncated downloads: every cut of a fixture (in steps) still parses."""
    for end in range(0, len(raw), max(1, len(raw) // 60)):
        check_invariants(parse_message(raw[:end]))
