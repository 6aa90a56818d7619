"""`parse_bytes` is the stdlib's compat32 parse, only without a regex compiled per boundary: the
boundary matcher agrees with the regex it replaces, and whole trees come out the same."""

from __future__ import annotations

import re
from email import policy
from email.message import Message
from email.parser import BytesParser

from hypothesis import given
from hypothesis import strategies as st

from mailmentor.parsing import mime
from mailmentor.parsing.mime import BoundaryPattern, parse_bytes
from tests.corpora import CORPORA, corpus
from tests.test_corpora_intake import corpus_messages

SUFFIX = r")(?P<end>--)?(?P<ws>[ \t]*)(?P<linesep>\r\n|\r|\n)?$"

separators = st.text(
    alphabet=st.sampled_from(list("abcXYZ019=_-.+?*()[]{}|^$\\/'\": \t")), min_size=1, max_size=12
).map(lambda text: "--" + text)
pieces = st.sampled_from(["", "--", " ", "\t", "\r", "\n", "\r\n", "x", "-", "=", "\n\n"])


@given(separators, st.lists(pieces, max_size=6), st.booleans())
def test_the_boundary_matcher_agrees_with_the_regex(sep: str, tail: list[str], lead: bool) -> None:
    line = ("x" if lead else "") + sep + "".join(tail)
    regex = re.compile("(?P<sep>" + re.escape(sep) + SUFFIX)
    want = regex.match(line)
    got = BoundaryPattern(sep).match(line)
    assert (got is None) == (want is None), (sep, line)
    if want is not None and got is not None:
        for name in ("sep", "end", "ws", "linesep"):
            assert got.group(name) == want.group(name), (name, sep, line)


def test_the_stand_in_compiles_the_boundary_pattern_only() -> None:
    sep = "--==_b(1)?*"
    pattern = "(?P<sep>" + re.escape(sep) + SUFFIX
    made = mime._BoundaryRe.compile(pattern)
    assert isinstance(made, BoundaryPattern) and made.sep == sep
    assert isinstance(mime._BoundaryRe.compile(r"\r\n|\n"), re.Pattern)
    assert isinstance(mime._BoundaryRe.compile(pattern, re.IGNORECASE), re.Pattern)


def shape(msg: Message) -> object:
    """Everything compat32 gives intake: headers, defects, preamble/epilogue, payload, children."""
    payload = msg.get_payload()
    children = [shape(part) for part in payload] if isinstance(payload, list) else payload
    return (
        msg.items(),
        [type(defect).__name__ for defect in msg.defects],
        msg.preamble,
        msg.epilogue,
        msg.get_unixfrom(),
        children,
    )


def stock(raw: bytes) -> Message:
    return BytesParser(policy=policy.compat32).parsebytes(raw)


NESTED = (
    b'From: a@example.org\r\nContent-Type: multipart/mixed; boundary="out(1)"\r\n\r\n'
    b"preamble\r\n--out(1)\r\nContent-Type: multipart/alternative; boundary=in.2\r\n\r\n"
    b"--in.2\r\nContent-Type: text/plain\r\n\r\nhello\r\n--in.2  \r\n\r\nhtml\r\n--in.2--\r\n"
    b"--out(1)\r\nContent-Type: message/rfc822\r\n\r\nSubject: inner\r\n\r\nbody\r\n"
    b"--out(1)--\r\nepilogue\r\n"
)
BROKEN = (
    b"Content-Type: multipart/mixed; boundary=x\n\n--x\nContent-Type: text/plain\n\nno end\n"
    b"--x\r\n\r\n--x --\nnot the end\n--xy\n"
)


def test_trees_are_the_stdlibs() -> None:
    for raw in (NESTED, BROKEN, b"Subject: plain\n\nbody", b"", b"\xff\xfe garbage\n\n--"):
        assert shape(parse_bytes(raw)) == shape(stock(raw)), raw


def test_trees_are_the_stdlibs_on_real_mail() -> None:
    corpus()  # skips with a reason when ../shared is not there
    count = 0
    for name, raw in corpus_messages():
        assert shape(parse_bytes(raw)) == shape(stock(raw)), name
        count += 1
    assert count > 100, f"only {count} messages under {CORPORA}"
