"""Headers of the mail we send: the folding policy, sanitising of hostile text, threading ids.

Everything that lands in a header passes through here, so a CR/LF or control character in a
subject or name from someone else's mail can never inject a header or break threading.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable, Sequence
from email.headerregistry import Address, BaseHeader, HeaderRegistry
from email.message import EmailMessage
from email.policy import EmailPolicy
from email.utils import parseaddr
from functools import lru_cache
from typing import Any

#: How many thread ids go into References: enough to thread, bounded against huge threads.
MAX_REFERENCES = 20
MAX_SUBJECT = 120
MAX_NAME = 60
MAX_EXCERPT = 800

_ID_HEADERS = frozenset({"message-id", "in-reply-to", "references"})
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\ufeff]+")
_TEXT_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u2028\u2029\ufeff]")
#: Re:/Fwd: and their translations, possibly repeated ("Re: AW: Fwd[2]:").
REPLY_PREFIX = re.compile(r"^\s*((re|fwd?|aw|wg|tr|sv|vs)\s*(\[\d+\])?\s*:\s*)+", re.IGNORECASE)
_MESSAGE_ID = re.compile(r"[!-;=?-~]+")  # printable ASCII without '<', '>' and space


class _Registry(HeaderRegistry):
    """The stock header registry, except that each header's class is made once: the stock one
    makes a new class (``type(...)``) every time a header is set, read or counted."""

    def __init__(self) -> None:
        super().__init__()
        self._classes: dict[str, type[BaseHeader]] = {}

    def map_to_type(self, name: str, cls: type[BaseHeader]) -> None:
        super().map_to_type(name, cls)
        self._classes.clear()

    def __getitem__(self, name: str) -> type[BaseHeader]:
        key = name.lower()
        cls = self._classes.get(key)
        if cls is None:
            cls = self._classes[key] = super().__getitem__(name)
        return cls


class Folded(str):
    """A header value composed and folded here (lines joined by CRLF, continuation lines start
    with a space): stored as it is, written as it is, and parsed only when read back.

    Only the headers whose folding we do ourselves are stored this way (`folded_header`), and
    only in the cases where the result is what the stock policy would write (see
    tests/reminders/test_composition.py); everything else takes the stock path.
    """

    def fold_lines(self, name: str, linesep: str) -> str:
        return f"{name}: {linesep.join(self.split(_CRLF))}{linesep}"


_CRLF = "\r\n"
#: Line length of the headers we fold (the policy's max_line_length).
_LIMIT = 78
#: A plain address (dot-atom local part and domain), as the address folder writes it unchanged.
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_PLAIN_ADDRESS = re.compile(rf"{_ATEXT}(\.{_ATEXT})*@{_ATEXT}(\.{_ATEXT})*")
#: Unstructured text the stock folder writes unchanged when it fits on the line.
_PLAIN_TEXT = re.compile(r"[!-~]+( [!-~]+)*")


def _id_lines(name: str, value: str, limit: int) -> list[str] | None:
    """Message-ID, In-Reply-To, References: whole ids, never encoded, folded between ids."""
    ids = str(value).split()
    if not ids or not all(_MESSAGE_ID.fullmatch(i.strip("<>")) for i in ids):
        return None
    lines = [f"{name}: {ids[0]}"]
    for item in ids[1:]:
        if len(lines[-1]) + 1 + len(item) > limit:
            lines.append(f" {item}")
        else:
            lines[-1] += f" {item}"
    return lines


def _text_lines(name: str, value: str, limit: int) -> list[str] | None:
    """A subject: ASCII words as they are, the rest RFC 2047, folded between tokens."""
    text = str(value)
    if not text or text != " ".join(text.split()):
        return None
    return _fold_tokens(f"{name}:", encode_words(text), limit)


def folded_header(name: str, value: str) -> Folded | None:
    """``value`` folded for header ``name`` exactly as MAIL_POLICY would fold it, or None when
    this is not one of the simple cases (then the caller sets it the stock way)."""
    key = name.lower()
    if key in _ID_HEADERS:
        lines = _id_lines(name, value, _LIMIT)
    elif key == "subject":
        lines = _text_lines(name, value, _LIMIT)
    else:
        plain = _PLAIN_ADDRESS if key in _ADDRESS_HEADERS else _PLAIN_TEXT
        if len(name) + 2 + len(value) > _LIMIT or "=?" in value or not plain.fullmatch(value):
            return None
        lines = [f"{name}: {value}"]
    if lines is None:
        return None
    lines[0] = lines[0][len(name) + 2 :] if lines[0] != f"{name}:" else ""
    return Folded(_CRLF.join(lines))


_ADDRESS_HEADERS = frozenset({"reply-to", "from", "to", "cc", "sender"})


class _MailPolicy(EmailPolicy):
    """The default policy, except that Message-ID, In-Reply-To and References are folded by hand.

    The stock folder RFC 2047-encodes a message id longer than a line, which threading code in
    mail clients and IMAP servers does not decode; ids must stay verbatim. Headers composed
    here (`Folded`) are written as they are, and header objects shared by every message
    (`shared_header`) are folded once.
    """

    def __init__(self, **kw: Any) -> None:
        kw.setdefault("header_factory", _Registry())
        super().__init__(**kw)

    def _fold_ids(self, name: str, value: str) -> str | None:
        lines = _id_lines(name, value, self.max_line_length or 78)
        return None if lines is None else self.linesep.join(lines) + self.linesep

    def _fold_text(self, name: str, value: str) -> str | None:
        lines = _text_lines(name, value, self.max_line_length or 78)
        return None if lines is None else self.linesep.join(lines) + self.linesep

    def _fold_own(self, name: str, value: Any) -> str | None:
        if isinstance(value, Folded):
            return value.fold_lines(name, self.linesep)
        known = getattr(value, "_mm_folded", None)
        if known is not None:
            return str(known.fold_lines(name, self.linesep))
        key = name.lower()
        if key in _ID_HEADERS:
            return self._fold_ids(name, value)
        if key == "subject":
            return self._fold_text(name, value)
        return None

    def header_store_parse(self, name: str, value: Any) -> tuple[str, Any]:
        """Keep a subject's literal text literal: '=?…?=' in it is text, not an encoded word."""
        if name.lower() == "subject" and isinstance(value, str) and not hasattr(value, "name"):
            text = " ".join(value.split())
            if text and text == value:
                value = " ".join(encode_words(text))
        return super().header_store_parse(name, value)

    def fold(self, name: str, value: Any) -> str:
        folded = self._fold_own(name, value)
        if folded is not None:
            return folded
        memo = getattr(value, "_mm_folds", None)
        if memo is None:
            return str(super().fold(name, value))
        key = ("str", self.linesep, self.max_line_length, self.utf8, self.cte_type)
        done = memo.get(key)
        if done is None:
            done = memo[key] = super().fold(name, value)
        return str(done)

    def fold_binary(self, name: str, value: Any) -> bytes:
        folded = self._fold_own(name, value)
        if folded is not None:
            return folded.encode("ascii")
        memo = getattr(value, "_mm_folds", None)
        if memo is None:
            return super().fold_binary(name, value)
        key = ("bytes", self.linesep, self.max_line_length, self.utf8, self.cte_type)
        done = memo.get(key)
        if done is None:
            done = memo[key] = super().fold_binary(name, value)
        return bytes(done)


def _encoded_words(text: str, max_bytes: int = 42) -> list[str]:
    """RFC 2047 base64 words for ``text``, split on character boundaries (each ≤ 68 chars)."""
    words: list[str] = []
    chunk = b""
    for char in text:
        data = char.encode("utf-8")
        if chunk and len(chunk) + len(data) > max_bytes:
            words.append(f"=?utf-8?b?{base64.b64encode(chunk).decode('ascii')}?=")
            chunk = b""
        chunk += data
    if chunk:
        words.append(f"=?utf-8?b?{base64.b64encode(chunk).decode('ascii')}?=")
    return words


def _needs_encoding(word: str) -> bool:
    return not word.isascii() or "=?" in word or "?=" in word or len(word) > 60


def encode_words(text: str) -> list[str]:
    """Header tokens for single-spaced ``text``: ASCII words as they are, the rest RFC 2047.

    Runs of words that need encoding become one run of encoded words with the spaces inside the
    encoding, since decoders drop the whitespace between adjacent encoded words. (Python 3.11's
    own folder loses or adds spaces in some mixes of ASCII and non-ASCII words.)
    """
    tokens: list[str] = []
    run: list[str] = []
    for word in text.split(" "):
        if _needs_encoding(word):
            run.append(word)
            continue
        if run:
            tokens.extend(_encoded_words(" ".join(run)))
            run = []
        tokens.append(word)
    if run:
        tokens.extend(_encoded_words(" ".join(run)))
    return tokens


def _fold_tokens(start: str, tokens: list[str], limit: int) -> list[str]:
    """Lay tokens out after ``start`` on lines of at most ``limit`` (one token may exceed it)."""
    lines = [start]
    for token in tokens:
        if len(lines[-1]) + 1 + len(token) > limit and lines[-1] != start:
            lines.append(f" {token}")
        else:
            lines[-1] += f" {token}"
    return lines


#: Policy of every message built here: CRLF, and 7-bit bodies (quoted-printable where needed) so any
#: SMTP server accepts them as they are.
MAIL_POLICY: EmailPolicy = _MailPolicy().clone(linesep="\r\n", cte_type="7bit")


def shared(name: str, value: Any) -> Any:
    """The header object MAIL_POLICY stores for ``name: value``, to be shared by every message
    that carries the same header (From, To, the parts' Content-Type, ...): header objects are
    immutable, and a shared one's folded form is worked out once, by the stock folder."""
    header = MAIL_POLICY.header_store_parse(name, value)[1]
    setattr(header, "_mm_folds", {})  # noqa: B010  # read by _MailPolicy.fold
    return header


def parsed(name: str, value: Folded) -> Any:
    """The header object for a value folded here: parsed once, so that reading it back (as the
    generator does with a Content-Type, several times) parses nothing, and written as folded."""
    header = MAIL_POLICY.header_fetch_parse(name, value)
    setattr(header, "_mm_folded", value)  # noqa: B010  # read by _MailPolicy.fold
    return header


@lru_cache(maxsize=64)
def shared_header(name: str, value: str) -> Any:
    """`shared`, made once per header and value."""
    return shared(name, value)


# --- sanitising hostile text ------------------------------------------------------------------


def header_text(value: str, limit: int = MAX_SUBJECT) -> str:
    """One safe header line from hostile text: no CR/LF or control characters, bounded length."""
    cleaned = " ".join(_CONTROL.sub(" ", str(value)).split())
    if len(cleaned) > limit:
        cleaned = cleaned[: limit - 1].rstrip() + "…"
    return cleaned


def clean_body(value: str, limit: int = MAX_EXCERPT) -> str:
    """Text for a mail body: newlines normalised, control characters dropped, bounded length."""
    text = str(value).replace("\r\n", "\n").replace("\r", "\n")
    text = _TEXT_CONTROL.sub("", text).strip()
    text = re.sub(r"\n{3,}", "\n\n", text)
    if len(text) > limit:
        text = text[: limit - 1].rstrip() + "…"
    return text


def clean_subject(subject: str) -> str:
    """The loop subject for our own subjects: no Re:/Fwd: prefixes, one line, bounded."""
    text = header_text(subject, limit=10 * MAX_SUBJECT)
    text = REPLY_PREFIX.sub("", text).strip()
    return header_text(text, limit=80) or "(no subject)"


def address(value: str, what: str, display_name: str = "") -> Address:
    """A configured address as a header value; a bad one is named in the error."""
    text = header_text(value, limit=320)
    spec = parseaddr(text)[1] if "<" in text else text
    try:
        if "@" not in spec:
            raise ValueError("no '@'")
        return Address(display_name=display_name, addr_spec=spec)
    except (ValueError, IndexError) as exc:
        raise ValueError(f"invalid {what} {value!r}: {exc}") from None


def domain(value: str) -> str:
    """The domain of an address, for the Message-IDs we make ("localhost" when there is none)."""
    return value.rpartition("@")[2].strip().lower() or "localhost"


# --- threading --------------------------------------------------------------------------------


def clean_message_id(value: str | None) -> str | None:
    """A Message-ID without angle brackets, or None when it is absent or unsafe in a header."""
    if not value:
        return None
    cleaned = str(value).strip().strip("<>").strip()
    if not cleaned or len(cleaned) > 900 or not _MESSAGE_ID.fullmatch(cleaned):
        return None
    return cleaned


def thread_references(message_ids: Iterable[str], limit: int = MAX_REFERENCES) -> list[str]:
    """The thread's usable ids, de-duplicated, oldest first, capped to the last ``limit``."""
    seen: set[str] = set()
    result: list[str] = []
    for raw in message_ids:
        cleaned = clean_message_id(raw)
        if cleaned and cleaned not in seen:
            seen.add(cleaned)
            result.append(cleaned)
    return result[-limit:] if limit > 0 else []


def set_thread_headers(msg: EmailMessage, thread: Sequence[str]) -> None:
    """In-Reply-To the thread's last id, References all of them (ids already cleaned)."""
    if thread:
        msg["In-Reply-To"] = f"<{thread[-1]}>"
        msg["References"] = " ".join(f"<{i}>" for i in thread)
