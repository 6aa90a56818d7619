"""Authentication-Results (RFC 8601): did the user's own receiving server verify the sender?

From is easy to forge; DKIM, SPF and DMARC results written by the receiving server are not, as long
as only that server's headers are believed (RFC 8601 §5: a conforming MTA deletes headers that
claim its authserv-id, and any other host's header may be forged). Parsing is pure and lenient
about form (comments, quoting, folding, CFWS anywhere the grammar allows it) but never guesses:
a header without a readable authserv-id yields nothing, so it can never verify anyone.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

#: Bounds on hostile input: header values are cut by the message parser too.
MAX_VALUE_CHARS = 4_000
MAX_RESULTS = 50
_KEYWORD = re.compile(r"^[a-z0-9](?:[a-z0-9_-]*[a-z0-9])?$")
_VERSION = re.compile(r"^\d{1,9}$")
_STOP = frozenset(';="()')


@dataclass(frozen=True)
class AuthResult:
    """One resinfo (``dkim=pass header.d=example.com``) from one header.

    ``properties`` keeps every ``ptype.property=value`` (and ``reason=``) pair in order, as a
    tuple so results stay hashable; keys are lower-cased, values as written.
    """

    authserv_id: str
    method: str
    result: str
    properties: tuple[tuple[str, str], ...] = ()

    def get(self, name: str, default: str = "") -> str:
        """The first value of property ``name`` (e.g. "header.d"), or ``default``."""
        wanted = name.lower()
        return next((value for key, value in self.properties if key == wanted), default)


@dataclass(frozen=True)
class _Token:
    kind: str  # "word", "quoted", ";" or "="
    text: str
    spaced: bool  # whitespace or a comment came right before it


def _skip_comment(value: str, i: int) -> int:
    """The index just past the (nested, escaped) comment opening at ``i``, or the end."""
    depth = 0
    while i < len(value):
        if value[i] == "\\":
            i += 2
            continue
        depth += {"(": 1, ")": -1}.get(value[i], 0)
        i += 1
        if depth == 0:
            break
    return min(i, len(value))


def _quoted(value: str, i: int) -> tuple[str, int] | None:
    """The unescaped text of the quoted string opening at ``i`` and the index past it."""
    text: list[str] = []
    i += 1
    while i < len(value) and value[i] != '"':
        if value[i] == "\\" and i + 1 < len(value):
            i += 1
        text.append(value[i])
        i += 1
    return ("".join(text), i + 1) if i < len(value) else None


def _tokens(value: str) -> list[_Token] | None:
    """Words, quoted strings, ';' and '=' with comments dropped; None when a quote never ends.

    An unterminated comment just ends the value: everything after it was comment anyway (and a
    value cut at a length bound often ends inside one).
    """
    out: list[_Token] = []
    i, n = 0, len(value)
    spaced = True
    while i < n:
        char = value[i]
        if char.isspace() or char in "()":
            i = _skip_comment(value, i) if char == "(" else i + 1
            spaced = True
            continue
        if char == '"':
            quoted = _quoted(value, i)
            if quoted is None:
                return None
            out.append(_Token("quoted", quoted[0], spaced))
            i = quoted[1]
        elif char in ";=":
            out.append(_Token(char, char, spaced))
            i += 1
        else:
            start = i
            while i < n and not value[i].isspace() and value[i] not in _STOP:
                i += 1
            out.append(_Token("word", value[start:i], spaced))
        spaced = False
    return out


def _segments(tokens: list[_Token]) -> Iterator[list[_Token]]:
    current: list[_Token] = []
    for token in tokens:
        if token.kind == ";":
            yield current
            current = []
        else:
            current.append(token)
    yield current


def _authserv_id(segment: list[_Token]) -> str | None:
    """``authserv-id [version]``; anything else (a missing id, a stray ``=``) is not a header."""
    if not segment or segment[0].kind not in ("word", "quoted"):
        return None
    rest = segment[1:]
    if any(t.kind != "word" for t in rest) or len(rest) > 1:
        return None
    if rest and not _VERSION.match(rest[0].text):
        return None
    found = segment[0].text.strip().lower()
    return found if found and not any(c.isspace() for c in found) else None


def _resinfo(authserv_id: str, segment: list[_Token]) -> AuthResult | None:
    """``method[/version] = result *(key = value)``; None for ``none`` or a malformed one."""
    equals = next((i for i, t in enumerate(segment) if t.kind == "="), None)
    if equals is None or equals == 0 or equals + 1 >= len(segment):
        return None
    head = segment[:equals]
    if any(t.kind != "word" for t in head) or segment[equals + 1].kind != "word":
        return None
    method = "".join(t.text for t in head).split("/")[0].lower()
    result = segment[equals + 1].text.lower()
    if not _KEYWORD.match(method) or not _KEYWORD.match(result):
        return None
    return AuthResult(authserv_id, method, result, tuple(_properties(segment[equals + 2 :])))


def _properties(tokens: list[_Token]) -> Iterator[tuple[str, str]]:
    """``ptype.property=value`` pairs; CFWS may surround the dot and the '=' (RFC 8601 B.7)."""
    key: list[str] = []
    i = 0
    while i < len(tokens):
        token = tokens[i]
        if token.kind != "=":
            key.append(token.text if token.kind == "word" else "")
            i += 1
            continue
        i += 1
        if not key or i >= len(tokens) or tokens[i].kind == "=":
            key = []
            continue
        value = tokens[i].text
        i += 1
        if tokens[i - 1].kind == "word":  # base64 padding glued on: header.b=abc=
            while i < len(tokens) and tokens[i].kind == "=" and not tokens[i].spaced:
                value += "="
                i += 1
        name = "".join(_key_tail(key)).lower()
        key = []
        if name:
            yield name, value


def _key_tail(words: list[str]) -> list[str]:
    """The words of the key just before '=': after the last word that is not glued by a dot."""
    parts: list[str] = []
    for word in reversed(words):
        if parts and not (word.endswith(".") or parts[-1].startswith(".") or word == "."):
            break
        parts.append(word)
    return list(reversed(parts))


def _parse(value: str) -> tuple[str, list[AuthResult]] | None:
    """The authserv-id and its results, or None when the value has no readable authserv-id."""
    tokens = _tokens(value[:MAX_VALUE_CHARS])
    if tokens is None:
        return None
    segments = _segments(tokens)
    authserv_id = _authserv_id(next(segments))
    if authserv_id is None:
        return None
    results = [r for r in (_resinfo(authserv_id, s) for s in segments) if r is not None]
    return authserv_id, results[:MAX_RESULTS]


def parse_authentication_results(value: str) -> list[AuthResult]:
    """Every result in one header value; ``none`` or anything unreadable gives []. Never raises."""
    try:
        parsed = _parse(str(value))
    except Exception:  # a parser bug must not turn into a crash of the watcher
        return []
    return parsed[1] if parsed else []


# --- alignment and the verdict ------------------------------------------------------------------


def _domain(text: str) -> str:
    """The domain of an address, ``@domain`` or bare domain: lower-case, IDNA, no trailing dot."""
    domain = text.strip().strip("<>").rpartition("@")[2].strip().rstrip(".").lower()
    if domain and not domain.isascii():
        try:
            domain = domain.encode("idna").decode("ascii")
        except UnicodeError:
            return ""
    return domain if domain and " " not in domain else ""


def _is_within(child: str, parent: str) -> bool:
    """``child`` equals ``parent`` or is below it; a bare TLD is never anyone's parent."""
    if not child or not parent:
        return False
    return child == parent or ("." in parent and child.endswith("." + parent))


def _aligned(result: AuthResult, from_domain: str) -> bool:
    """DMARC-style relaxed alignment of one passing result with the From domain."""
    if result.result != "pass":
        return False
    if result.method == "dkim":
        signers = (result.get("header.d"), result.get("header.i"))
        return any(_is_within(from_domain, _domain(s)) for s in signers if s)
    if result.method == "spf":
        return _is_within(_domain(_mailfrom(result)), from_domain)
    if result.method == "dmarc":
        return _domain(result.get("header.from")) == from_domain
    return False


def _mailfrom(result: AuthResult) -> str:
    """smtp.mailfrom, or smtp.mail as Gmail wrote it before RFC 5451 settled the name."""
    return result.get("smtp.mailfrom") or result.get("smtp.mail")


def _describe(result: AuthResult) -> str:
    """``dkim=fail``, or for a pass of another domain ``dkim=pass (evil.example)``."""
    text = f"{result.method}={result.result}"
    if result.result == "pass":
        key = {"dkim": "header.d", "spf": "smtp.mailfrom", "dmarc": "header.from"}[result.method]
        other = _domain(_mailfrom(result) if result.method == "spf" else result.get(key))
        other = other or _domain(result.get("header.i") if result.method == "dkim" else "")
        text += f" ({other[:80]})" if other else f" (no {key})"
    return text


def _ids(authserv_id: str) -> list[str]:
    return [part.strip().lower() for part in authserv_id.split(",") if part.strip()]


def sender_verified(
    header_values: Sequence[str], authserv_id: str, from_address: str
) -> str | None:
    """None when the user's server verified the From domain, else a short reason for the log.

    Only headers whose authserv-id is ``authserv_id`` count (case-insensitive; several ids may be
    given separated by commas, for providers whose MX hosts each sign with their own name).
    Verified means one aligned pass: ``dkim`` with header.d/header.i equal to or a parent of the
    From domain, ``spf`` with smtp.mailfrom equal to or under it, or ``dmarc`` with header.from
    equal to it.
    """
    trusted = _ids(authserv_id)
    if not trusted:
        return "no authserv-id configured to trust"
    from_domain = _domain(from_address) if "@" in from_address else ""
    if not from_domain:
        return f"no domain in From address {from_address[:80]!r}"
    ours: list[AuthResult] = []
    seen: list[str] = []
    found_ours = False
    for value in list(header_values)[:MAX_RESULTS]:
        parsed = _parse(str(value))
        if parsed is None:
            seen.append("one without an authserv-id")
            continue
        if parsed[0] not in trusted:
            seen.append(parsed[0][:64])
            continue
        found_ours = True
        ours.extend(parsed[1])
    if not found_ours:
        others = ", ".join(dict.fromkeys(seen[:3]))
        return f"no Authentication-Results from {' or '.join(trusted)}" + (
            f" (seen: {others})" if others else ""
        )
    if any(_aligned(result, from_domain) for result in ours):
        return None
    relevant = [r for r in ours if r.method in ("dkim", "spf", "dmarc")]
    if not relevant:
        return f"no dkim, spf or dmarc result for {from_domain}"
    described = ", ".join(list(dict.fromkeys(map(_describe, relevant)))[:6])
    return f"{described} for {from_domain}"
