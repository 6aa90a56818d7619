"""The stdlib's MIME parser (compat32), without compiling a regex for every multipart boundary.

``email.feedparser`` compiles a pattern for each boundary it meets. Boundaries are unique to a
message, so the ``re`` module's cache never helps, and each compile costs ~0.4 ms here: more
than a tenth of parsing a typical message (bench/RESULTS.md). This runs the very same parser,
its generator given a stand-in for ``re`` whose ``compile`` answers that one pattern with
`BoundaryPattern`, a plain string matcher with the same matches (property-tested against the
regex); any other pattern, or a parser that no longer has the expected shape, gets the stock
behaviour.
"""

from __future__ import annotations

import functools
import re
import types
from email import feedparser, policy
from email.message import Message
from typing import Any

_PREFIX = "(?P<sep>"
_SUFFIX = r")(?P<end>--)?(?P<ws>[ \t]*)(?P<linesep>\r\n|\r|\n)?$"
_UNESCAPE = re.compile(r"\\(.)", re.DOTALL)


class BoundaryMatch:
    """What ``match`` of the feedparser's boundary regex returns, as far as it is used."""

    __slots__ = ("_groups",)

    def __init__(self, sep: str, end: str | None, ws: str, linesep: str | None) -> None:
        self._groups = {"sep": sep, "end": end, "ws": ws, "linesep": linesep}

    def group(self, name: str) -> str | None:
        return self._groups[name]


class BoundaryPattern:
    """``re.compile('(?P<sep>' + re.escape(sep) + SUFFIX).match``, by string operations."""

    __slots__ = ("sep",)

    def __init__(self, sep: str) -> None:
        self.sep = sep

    def match(self, line: str) -> BoundaryMatch | None:
        sep = self.sep
        if not line.startswith(sep):
            return None
        at = len(sep)
        end = "--" if line.startswith("--", at) else None
        if end:
            at += 2
        rest = line[at:]
        tail = rest.lstrip(" \t")
        ws = rest[: len(rest) - len(tail)]
        # (\r\n|\r|\n)?$ where $ is the end or just before a final \n, alternatives in order
        for linesep in ("\r\n", "\r", "\n"):
            if tail.startswith(linesep) and tail[len(linesep) :] in ("", "\n"):
                return BoundaryMatch(sep, end, ws, linesep)
        if tail == "":
            return BoundaryMatch(sep, end, ws, None)
        return None


class _BoundaryRe:
    """Stands in for the ``re`` module inside the feedparser's generator."""

    escape = staticmethod(re.escape)

    @staticmethod
    def compile(pattern: str, flags: int = 0) -> Any:
        if not flags and pattern.startswith(_PREFIX) and pattern.endswith(_SUFFIX):
            escaped = pattern[len(_PREFIX) : -len(_SUFFIX)]
            sep = _UNESCAPE.sub(r"\1", escaped)
            if re.escape(sep) == escaped:
                return BoundaryPattern(sep)
        return re.compile(pattern, flags)


@functools.cache
def _parser_class() -> type[feedparser.FeedParser]:
    """FeedParser with its generator's globals naming `_BoundaryRe` as ``re`` (or the stock
    FeedParser when the generator is not the function this expects)."""
    stock = getattr(feedparser.FeedParser, "_parsegen", None)
    code = getattr(stock, "__code__", None)
    if code is None or "re" not in code.co_names or stock.__closure__:  # type: ignore[union-attr]
        return feedparser.FeedParser
    namespace = dict(vars(feedparser))
    namespace["re"] = _BoundaryRe
    parsegen = types.FunctionType(code, namespace, code.co_name, stock.__defaults__)  # type: ignore[union-attr]
    return type("BoundaryFeedParser", (feedparser.FeedParser,), {"_parsegen": parsegen})


def parse_bytes(raw: bytes) -> Message:
    """``BytesParser(policy=policy.compat32).parsebytes(raw)``, the same tree, faster."""
    parser = _parser_class()(policy=policy.compat32)
    parser.feed(raw.decode("ascii", "surrogateescape"))  # as BytesParser feeds the text parser
    return parser.close()
