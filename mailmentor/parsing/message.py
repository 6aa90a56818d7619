"""Raw RFC 5322 bytes in, one typed, bounded, safe record out; never an exception.

The watcher must survive anything a mailbox holds (broken MIME, unknown charsets, hostile
headers, 60-level nesting, huge parts), so every step here is defensive: headers are read raw and
decoded by hand, bodies are decoded from at most ``MAX_PART_BYTES`` of each part, MIME trees are
walked to ``MAX_DEPTH`` only, and a last-resort fallback turns even a parser crash into a record.

Because nothing relies on policy.default's header objects (which raise on some bad headers), the
stdlib parser runs with policy.compat32 only to split the MIME tree: ~2.5x faster here, and the
FIELD-NOTES measured the same ratio.
"""

from __future__ import annotations

import binascii
import codecs
import contextlib
import hashlib
import re
import weakref
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from email import policy
from email.message import Message
from email.parser import BytesHeaderParser
from email.utils import getaddresses, parsedate_to_datetime
from html import unescape
from html.parser import HTMLParser

from mailmentor.parsing.mime import parse_bytes
from mailmentor.parsing.quoting import normalize_newlines, strip_quoted

MAX_TEXT = 20_000
#: Only this much of any one MIME part is decoded.
MAX_PART_BYTES = 1_000_000
#: MIME nesting deeper than this is not walked.
MAX_DEPTH = 20
#: At most this many MIME parts are looked at in one message.
MAX_PARTS = 500
#: Messages larger than this are parsed from their first MAX_RAW_BYTES only.
MAX_RAW_BYTES = 25_000_000
MAX_HEADER_CHARS = 16_000
MAX_ADDRESSES = 500
MAX_ID_CHARS = 998
#: Authentication-Results kept per message: the receiving server's are the topmost ones.
MAX_AUTH_RESULTS = 20
MAX_AUTH_RESULT_CHARS = 2_000


@dataclass(frozen=True)
class Address:
    """One mailbox: lower-cased addr-spec ("" if unparseable) and a clean display name."""

    address: str
    name: str = ""


@dataclass(frozen=True)
class ForwardedMessage:
    """A message the user forwarded: inline (Gmail, Outlook, Apple Mail…) or attached."""

    sender: Address | None
    to: tuple[Address, ...]
    cc: tuple[Address, ...]
    subject: str
    date: datetime | None
    message_id: str | None
    in_reply_to: tuple[str, ...]
    references: tuple[str, ...]
    text: str


@dataclass(frozen=True)
class ParsedMessage:
    """Everything intake needs from one message, bounded in size and safe to log or store."""

    message_id: str
    in_reply_to: tuple[str, ...]
    references: tuple[str, ...]
    sender: Address | None
    to: tuple[Address, ...]
    cc: tuple[Address, ...]
    delivered_to: tuple[str, ...]
    subject: str
    date: datetime | None
    text: str
    reply_text: str
    automatic: str | None
    forwarded: tuple[ForwardedMessage, ...]
    #: Raw Authentication-Results values, top first, for checking who verified the sender.
    authentication_results: tuple[str, ...] = ()
    #: Addresses of a Bcc header some servers keep in the copy they deliver (and the user's
    #: own Sent copy has): where a plus-address tag may be written and nowhere else.
    bcc: tuple[str, ...] = ()

    def all_thread_ids(self) -> tuple[str, ...]:
        """References, then In-Reply-To, then the Message-ID: every id that can join a thread."""
        return tuple(dict.fromkeys((*self.references, *self.in_reply_to, self.message_id)))


# --- text cleaning --------------------------------------------------------------------------------

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_SURROGATE = re.compile(r"[\ud800-\udfff]")
_ENCODED_WORD = re.compile(r"=\?([^?\s]{1,64})\?([bBqQ])\?([^?\s]*)\?=")
_CHARSET_ALIASES = {
    "ks_c_5601-1987": "cp949",
    "ks_c_5601": "cp949",
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "x-gbk": "gb18030",
    "iso-8859-8-i": "iso-8859-8",
    "x-sjis": "shift_jis",
    "shift-jis": "shift_jis",
    "utf8": "utf-8",
    "unicode-1-1-utf-7": "utf-7",
    "x-unicode20utf8": "utf-8",
    "ascii": "cp1252",
    "us-ascii": "cp1252",
    "iso-8859-1": "cp1252",
    "latin1": "cp1252",
}


_WESTERN_SINGLE_BYTE = frozenset(("cp1252", "iso-8859-15", "windows-1252", "latin-1"))


def single_line(text: str) -> str:
    """No CR/LF or control characters, whitespace runs collapsed: safe for logs and headers."""
    return " ".join(_CONTROL.sub(" ", text).split())


def decode_bytes(data: bytes, charset: str | None) -> str:
    """Decode with the declared charset when it is a real text codec, else UTF-8, else cp1252.

    Text labelled ASCII or Latin-1 that is valid UTF-8 is read as UTF-8: mislabelled UTF-8 is
    common, while Latin-1 text that happens to form valid multi-byte UTF-8 is very rare.
    """
    name = (charset or "").strip().strip("\"'").split("*")[0].lower()
    name = _CHARSET_ALIASES.get(name, name)
    if name in _WESTERN_SINGLE_BYTE:
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            pass
    if name:
        try:
            info = codecs.lookup(name)
            if getattr(info, "_is_text_encoding", True):
                return data.decode(info.name, errors="replace")
        except Exception:  # unknown or broken codec: fall through
            pass
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace")


def _to_bytes(text: str) -> bytes:
    """Undo the parser's surrogateescape so 8-bit content can be decoded with its charset."""
    try:
        return text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return text.encode("utf-8", "replace")


def repair_8bit(text: str) -> str:
    """Raw 8-bit header bytes (RFC 6532 UTF-8 or legacy Latin-1) become real characters."""
    if not _SURROGATE.search(text):
        return text
    return decode_bytes(_to_bytes(text), None)


def _decode_word(encoding: str, payload: str) -> bytes:
    if encoding in "qQ":
        return binascii.a2b_qp(payload.encode("ascii", "replace"), header=True)
    cleaned = re.sub(r"[^A-Za-z0-9+/]", "", payload)
    if len(cleaned) % 4 == 1:
        cleaned = cleaned[:-1]
    cleaned += "=" * (-len(cleaned) % 4)
    return binascii.a2b_base64(cleaned)


def decode_words(value: str) -> str:
    """RFC 2047 encoded words decoded (adjacent words joined first), anything else left as is."""
    out: list[str] = []
    pending = b""
    pending_charset = ""
    pos = 0
    previous_was_word = False

    def flush() -> None:
        nonlocal pending
        if pending:
            out.append(decode_bytes(pending, pending_charset))
            pending = b""

    for match in _ENCODED_WORD.finditer(value):
        between = value[pos : match.start()]
        joinable = previous_was_word and not between.strip()
        charset = match.group(1)
        if not joinable or charset.lower() != pending_charset.lower():
            flush()
        if not joinable:
            out.append(between)
        pos = match.end()
        try:
            decoded = _decode_word(match.group(2), match.group(3))
        except (binascii.Error, ValueError):
            flush()
            out.append(match.group(0))
            previous_was_word = False
            continue
        pending += decoded
        pending_charset = charset
        previous_was_word = True
    flush()
    out.append(value[pos:])
    return "".join(out)


def decode_header_text(raw: str) -> str:
    """A header value as a person reads it: 8-bit repaired, encoded words decoded, one line."""
    return single_line(decode_words(repair_8bit(raw[:MAX_HEADER_CHARS])))


# --- raw header access ----------------------------------------------------------------------------


#: Each parsed message's raw headers by lower-cased name, built once: intake asks for some 60
#: headers of every message, and each plain lookup walks the whole header list.
_HEADER_INDEX: weakref.WeakKeyDictionary[Message, tuple[int, dict[str, list[str]]]] = (
    weakref.WeakKeyDictionary()
)


def _header_index(msg: Message) -> dict[str, list[str]]:
    """Raw values by lower-cased name, in order; a header that cannot be read ends the list
    (as a plain walk would stop there)."""
    try:
        count = len(msg)
        cached = _HEADER_INDEX.get(msg)
    except Exception:  # an object we cannot index: walk it every time
        count, cached = -1, None
    if cached is not None and cached[0] == count:
        return cached[1]
    index: dict[str, list[str]] = {}
    try:
        items: Iterable[tuple[str, object]] = msg.raw_items()
        for key, value in items:
            index.setdefault(str(key).strip().lower(), []).append(str(value)[:MAX_HEADER_CHARS])
    except Exception:  # a header we cannot read is a header we do not have
        pass
    if count >= 0:
        with contextlib.suppress(TypeError):
            _HEADER_INDEX[msg] = (count, index)
    return index


def raw_headers(msg: Message, name: str) -> list[str]:
    """Every raw value of header ``name``, undecoded; never raises, whatever the header holds."""
    return list(_header_index(msg).get(name.lower(), ()))


def first_header(msg: Message, name: str) -> str:
    """The first raw value of a header, or ""."""
    values = raw_headers(msg, name)
    return values[0] if values else ""


def header_text(msg: Message, name: str) -> str:
    """The first value of a header, decoded for people (subject, list ids, auto headers)."""
    return decode_header_text(first_header(msg, name))


# --- addresses, ids, dates ------------------------------------------------------------------------

_ADDR_SPEC = re.compile(r"^[^\s@<>()\[\],;:\"\\]+@[^\s@<>()\[\],;:\"\\]+$")
_EMBEDDED_ADDRESS = re.compile(r"[^\s<>,;:\"]+@[^\s<>,;:\"]+")
_EMBEDDED_ANGLE_ADDRESS = re.compile(r"<[^<>\s]+@[^<>\s]+>")
#: Python 3.11's folder can emit the comma between two addresses as its own encoded word.
_ENCODED_COMMA = re.compile(r"=\?[^?\s]{1,64}\?(?:[qQ]\?=2[cC]|[bB]\?LA==)\?=")


def normalize_address(text: str) -> str:
    """Lower-cased addr-spec, or "" when it is not one (no '@', spaces, controls…)."""
    candidate = text.strip().strip("<>").strip().lower()
    if candidate.startswith("mailto:"):
        candidate = candidate[len("mailto:") :]
    if len(candidate) > 320 or not _ADDR_SPEC.match(candidate):
        return ""
    return candidate


def clean_name(name: str, address: str = "") -> str:
    """A display name without quotes, markers or controls; "" when it only repeats the address."""
    cleaned = single_line(name).strip(" ,;").strip().strip("\"'“”‘’«»„*").strip()
    if cleaned.lower().strip("<>") == address or cleaned.lower() == f"mailto:{address}":
        return ""
    return cleaned[:200]


def parse_addresses(values: list[str]) -> tuple[Address, ...]:
    """Addresses from raw header values; names decoded after splitting so commas stay safe."""
    raws = [_ENCODED_COMMA.sub(",", " ".join(repair_8bit(value).split())) for value in values]
    out: list[Address] = []
    for raw in raws:
        if raw and "@" not in raw and not raw.rstrip().endswith(";"):
            name = clean_name(decode_words(raw))  # "From: Not An Address": keep the name
            if name:
                out.append(Address("", name))
    pairs = [pair for raw in raws if "@" in raw for pair in _address_pairs(raw)]
    for name, addr in pairs[:MAX_ADDRESSES]:
        decoded = decode_words(name)
        address = normalize_address(addr)
        if _EMBEDDED_ANGLE_ADDRESS.search(decoded):
            # An encoded word can hide "Name <a@b>, " when a folder misplaced it: recover it.
            out.extend(_reparse(f"{decoded} <{address}>" if address else decoded))
            continue
        cleaned = clean_name(decoded, address)
        if address or cleaned:
            out.append(Address(address, cleaned))
    return tuple(out[:MAX_ADDRESSES])


def _address_pairs(raw: str) -> list[tuple[str, str]]:
    """(name, addr-spec) pairs of one header value, never an address glued together from words.

    The stdlib joins the words of "alan@example.org Bcc: eve@x.net" (an injected line folded
    into To) into "alan@example.orgbcc". When a parsed address does not appear in the header as
    written, the addr-specs that do are used instead, with the names that parsed cleanly.
    """
    try:
        pairs = getaddresses([raw])
    except Exception:  # fall back to picking addr-specs out of the text
        return [("", found) for found in _EMBEDDED_ADDRESS.findall(raw)]
    written = raw.lower()

    def glued(addr: str) -> bool:
        return bool(normalize_address(addr)) and addr.lower() not in written

    if not any(glued(addr) for _, addr in pairs):
        return pairs
    kept = {addr.lower() for _, addr in pairs if not glued(addr)}
    unclaimed = [found for found in _EMBEDDED_ADDRESS.findall(raw) if found.lower() not in kept]
    out: list[tuple[str, str]] = []
    for name, addr in pairs:
        if not glued(addr):
            out.append((name, addr))
        elif unclaimed:  # the words it was glued from hold these addresses
            out.extend(("", found) for found in unclaimed)
            unclaimed = []
        else:  # obsolete but real syntax ("alan @ example.org") glues legitimately
            out.append((name, addr))
    return out


def _reparse(text: str) -> list[Address]:
    try:
        pairs = getaddresses([single_line(text)])
    except Exception:
        return []
    out = []
    for name, addr in pairs[:MAX_ADDRESSES]:
        address = normalize_address(addr)
        cleaned = clean_name(name, address)
        if address or cleaned:
            out.append(Address(address, cleaned))
    return out


_BRACKETED_ID = re.compile(r"<([^<>]{1,2000})>")


def _clean_id(text: str) -> str:
    return re.sub(r"[\s\x00-\x1f\x7f<>]+", "", text)[:MAX_ID_CHARS]


def parse_message_id(raw: str) -> str | None:
    """The first Message-ID in a header value, without <> or whitespace; None if there is none."""
    value = repair_8bit(raw[:MAX_HEADER_CHARS])
    match = _BRACKETED_ID.search(value)
    if match:
        found = _clean_id(match.group(1))
    else:
        tokens = value.split()
        found = _clean_id(tokens[0]) if tokens else ""
    return found or None


def parse_id_list(values: list[str]) -> tuple[str, ...]:
    """Message-IDs from References/In-Reply-To values, in order, deduplicated."""
    ids: list[str] = []
    for raw in values:
        value = repair_8bit(raw[:MAX_HEADER_CHARS])
        bracketed = _BRACKETED_ID.findall(value)
        if bracketed:
            ids.extend(_clean_id(item) for item in bracketed)
        else:
            ids.extend(_clean_id(token) for token in re.split(r"[\s,]+", value) if "@" in token)
    return tuple(dict.fromkeys(item for item in ids if item))


def parse_date(raw: str) -> datetime | None:
    """An aware datetime from an RFC 5322 date (naive → UTC), or None when unreadable."""
    text = single_line(repair_8bit(raw[:300]))
    if not text:
        return None
    try:
        parsed = parsedate_to_datetime(text)
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        parsed.astimezone(UTC)  # out-of-range offsets fail here, not in the caller
    except Exception:  # TypeError/ValueError/OverflowError/IndexError all seen
        return None
    return parsed


# --- MIME walking and body text -------------------------------------------------------------------

_TOKEN = r"[a-z0-9!#$&^_.+-]+"
_CONTENT_TYPE = re.compile(rf"^\s*({_TOKEN}/{_TOKEN})", re.I)


def _param(raw: str, name: str) -> str:
    match = re.search(rf"(?:^|;)\s*{name}\*?\s*=\s*(\"[^\"]*\"|[^;\s]*)", raw, re.I)
    if not match:
        return ""
    value = match.group(1).strip('"')
    if "''" in value:  # RFC 2231: charset'lang'value
        value = value.split("''", 1)[1]
    return value


def content_type(part: Message) -> str:
    """The part's media type, lower-case; text/plain when missing or malformed (RFC 2045)."""
    match = _CONTENT_TYPE.match(first_header(part, "content-type"))
    return match.group(1).lower() if match else "text/plain"


def charset_of(part: Message) -> str:
    return _param(first_header(part, "content-type"), "charset")


def is_attachment(part: Message) -> bool:
    return first_header(part, "content-disposition").strip().lower().startswith("attachment")


def filename_of(part: Message) -> str:
    name = _param(first_header(part, "content-disposition"), "filename") or _param(
        first_header(part, "content-type"), "name"
    )
    return single_line(decode_words(name))


def _raw_payload(part: Message) -> object:
    """The payload exactly as parsed (8-bit bytes still surrogate-escaped).

    ``get_payload()`` would decode 8-bit text with the declared charset (and fail on unknown
    ones) before we get to choose, so the parsed attribute is read directly.
    """
    return getattr(part, "_payload", None)


def children(part: Message) -> list[Message]:
    """Sub-parts of a multipart or message/* part ([] for leaves or unreadable payloads)."""
    payload = _raw_payload(part)
    if isinstance(payload, list):
        return [child for child in payload[:MAX_PARTS] if isinstance(child, Message)]
    return []


def part_bytes(part: Message, limit: int = MAX_PART_BYTES) -> bytes:
    """The decoded content of a leaf part, at most ``limit`` bytes; broken encodings tolerated.

    Only about ``limit`` bytes of the encoded payload are decoded, so a small limit is cheap.
    """
    payload = _raw_payload(part)
    if payload is None or isinstance(payload, list):
        return b""
    if isinstance(payload, bytes | bytearray):
        return bytes(payload[:limit])
    text = str(payload)
    encoding = first_header(part, "content-transfer-encoding").strip().lower()
    if encoding == "base64":
        slack = min(65536, limit // 2 + 1024)  # room for line breaks and stray characters
        cleaned = re.sub(r"[^A-Za-z0-9+/]", "", text[: limit * 4 // 3 + slack])
        cleaned = cleaned[: limit * 4 // 3 + 4]
        if len(cleaned) % 4 == 1:
            cleaned = cleaned[:-1]
        cleaned += "=" * (-len(cleaned) % 4)
        try:
            data = binascii.a2b_base64(cleaned)
        except (binascii.Error, ValueError):
            data = b""
    elif encoding == "quoted-printable":
        data = binascii.a2b_qp(_to_bytes(text[: limit * 3]))
    else:
        data = _to_bytes(text[:limit])
    return data[:limit]


def part_text(part: Message) -> str:
    """A text part decoded with its charset; HTML converted; newlines normalized."""
    text = decode_bytes(part_bytes(part), charset_of(part))
    if content_type(part) == "text/html":
        text = html_to_text(text)
    elif _param(first_header(part, "content-type"), "format").lower() == "flowed":
        text = unflow(text, _param(first_header(part, "content-type"), "delsp").lower() == "yes")
    return clean_text(text)


def clean_text(text: str) -> str:
    """Body text: one newline style, no control characters except tab and newline."""
    text = normalize_newlines(text)
    return re.sub(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]", "", text)


def unflow(text: str, delsp: bool) -> str:
    """RFC 3676 format=flowed: soft-broken lines (ending in a space) joined again."""
    out: list[str] = []
    carry = ""
    carry_depth = -1
    for line in normalize_newlines(text).split("\n"):
        depth = len(line) - len(line.lstrip(">"))
        content = line[depth:]
        if content.startswith(" "):
            content = content[1:]  # space-stuffing
        if carry and depth != carry_depth:
            out.append(">" * carry_depth + (" " if carry_depth else "") + carry)
            carry = ""
        if content.endswith(" ") and content != "-- ":
            carry += content[:-1] if delsp else content
            carry_depth = depth
            continue
        full = carry + content
        carry = ""
        out.append(">" * depth + (" " if depth else "") + full)
    if carry:
        out.append(">" * max(carry_depth, 0) + (" " if carry_depth > 0 else "") + carry)
    return "\n".join(out)


class _HtmlText(HTMLParser):
    """Just enough HTML → text: block elements break lines, blockquotes become ``>`` quotes."""

    _BLOCK = frozenset((
        "p", "div", "br", "tr", "li", "ul", "ol", "table", "h1", "h2", "h3", "h4", "h5", "h6",
        "pre", "hr", "dl", "dt", "dd", "section", "article", "header", "footer", "address",
        "center", "blockquote",
    ))  # fmt: skip
    _SKIP = frozenset(("script", "style", "head", "title", "template", "noscript"))

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.lines: list[str] = []
        self.current: list[str] = []
        self.quote = 0
        self.skip = 0
        self.pre = 0
        self.size = 0

    def _flush(self, force: bool = False) -> None:
        text = "".join(self.current)
        self.current = []
        text = text if self.pre else " ".join(text.split())
        if not (text.strip() or force):
            return
        prefix = "> " * self.quote
        for line in text.split("\n"):
            self.lines.append(prefix + line if line else prefix.rstrip())

    def _paragraph_break(self) -> None:
        if self.lines and self.lines[-1].strip("> "):
            self.lines.append(("> " * self.quote).rstrip())

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._SKIP:
            self.skip += 1
        elif tag == "br":
            self._flush(force=True)
        elif tag in self._BLOCK:
            self._flush()
            if tag == "blockquote":
                self.quote += 1
            elif tag == "pre":
                self.pre += 1
        elif tag in ("td", "th"):
            self.current.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag in self._SKIP:
            self.skip = max(0, self.skip - 1)
        elif tag in self._BLOCK:
            self._flush()
            if tag == "blockquote":
                self.quote = max(0, self.quote - 1)
            elif tag == "pre":
                self.pre = max(0, self.pre - 1)
            elif tag in ("p", "h1", "h2", "h3", "h4", "h5", "h6", "table", "ul", "ol"):
                self._paragraph_break()

    def handle_data(self, data: str) -> None:
        if self.skip or self.size > MAX_TEXT * 4:
            return
        self.size += len(data)
        self.current.append(data)

    def text(self) -> str:
        self._flush()
        joined = "\n".join(self.lines)
        return re.sub(r"\n{3,}", "\n\n", joined).strip()


def html_to_text(markup: str) -> str:
    """Readable text from HTML; on any parser trouble, tags are simply dropped."""
    markup = markup[:MAX_PART_BYTES]
    try:
        parser = _HtmlText()
        parser.feed(markup)
        parser.close()
        return parser.text()
    except Exception:  # never let odd markup stop the watcher
        return unescape(re.sub(r"<[^>]*>", " ", markup))


def walk(msg: Message, depth: int = 0) -> Iterator[tuple[Message, int]]:
    """Depth-first parts to MAX_DEPTH and MAX_PARTS, not entering message/* (forwards)."""
    stack: list[tuple[Message, int]] = [(msg, depth)]
    seen = 0
    while stack and seen < MAX_PARTS:
        part, level = stack.pop()
        seen += 1
        yield part, level
        if level >= MAX_DEPTH or content_type(part).startswith("message/"):
            continue
        stack.extend((child, level + 1) for child in reversed(children(part)))


def _alternative_choice(part: Message) -> Message | None:
    options = children(part)
    for wanted in ("text/plain", "text/html"):
        for child in options:
            if content_type(child) == wanted and not is_attachment(child):
                return child
    return next((child for child in options if children(child)), None)


def body_text(msg: Message, depth: int = 0) -> str:
    """The best plain text of a message: text/plain parts, else HTML ones converted; bounded."""
    plain: list[str] = []
    html: list[str] = []
    stack: list[tuple[Message, int]] = [(msg, depth)]
    seen = 0
    while stack and seen < MAX_PARTS:
        part, level = stack.pop()
        seen += 1
        ctype = content_type(part)
        if ctype.startswith("message/") and level > depth:
            continue  # an attached message is a forward, not body text
        subparts = children(part)
        if subparts or ctype.startswith("multipart/"):
            if level >= MAX_DEPTH:
                continue
            if ctype == "multipart/alternative":
                chosen = _alternative_choice(part)
                if chosen is not None:
                    stack.append((chosen, level + 1))
                continue
            stack.extend((child, level + 1) for child in reversed(subparts))
            continue
        if is_attachment(part):
            continue
        plain_size = sum(len(t.strip()) for t in plain)
        if ctype == "text/plain" and plain_size <= MAX_TEXT:
            plain.append(part_text(part))
        elif ctype == "text/html" and not plain_size and sum(map(len, html)) <= MAX_TEXT:
            html.append(part_text(part))  # only needed while no plain text has turned up
    chosen_text = [t for t in plain if t.strip()] or [t for t in html if t.strip()]
    return "\n\n".join(t.strip("\n") for t in chosen_text)[:MAX_TEXT]


# --- the entry point ------------------------------------------------------------------------------


def derived_message_id(raw: bytes) -> str:
    """A stable id for messages without one, so reprocessing stays idempotent."""
    return f"derived-{hashlib.sha256(raw).hexdigest()[:24]}@mailmentor"


def _delivered_to(msg: Message) -> tuple[str, ...]:
    found: list[str] = []
    for name in ("delivered-to", "x-original-to", "envelope-to"):
        for value in raw_headers(msg, name):
            for piece in re.split(r"[\s,;]+", single_line(repair_8bit(value))):
                cleaned = normalize_address(piece) or piece.strip("<>").lower()
                if cleaned and "@" in cleaned:
                    found.append(cleaned[:320])
    return tuple(dict.fromkeys(found))


def authentication_results(msg: Message) -> tuple[str, ...]:
    """The first MAX_AUTH_RESULTS Authentication-Results values, unfolded and bounded.

    A value longer than the bound is cut back to its last ';', so no half-read result (a domain
    cut short into another domain) is ever passed on.
    """
    found: list[str] = []
    for raw in raw_headers(msg, "authentication-results")[:MAX_AUTH_RESULTS]:
        value = single_line(repair_8bit(raw))
        if len(value) > MAX_AUTH_RESULT_CHARS:
            value = value[:MAX_AUTH_RESULT_CHARS].rpartition(";")[0]
        if value:
            found.append(value)
    return tuple(found)


@dataclass(frozen=True)
class HeaderFields:
    """The header-derived fields shared by ParsedMessage and attached ForwardedMessage."""

    sender: Address | None
    to: tuple[Address, ...]
    cc: tuple[Address, ...]
    subject: str
    date: datetime | None
    message_id: str | None
    in_reply_to: tuple[str, ...]
    references: tuple[str, ...]
    delivered_to: tuple[str, ...]
    bcc: tuple[str, ...] = ()


def header_fields(msg: Message) -> HeaderFields:
    """Read every header mailmentor uses, each defensively."""
    senders = parse_addresses(raw_headers(msg, "from"))
    return HeaderFields(
        sender=senders[0] if senders else None,
        to=parse_addresses(raw_headers(msg, "to")),
        cc=parse_addresses(raw_headers(msg, "cc")),
        subject=decode_header_text(first_header(msg, "subject"))[:1000],
        date=parse_date(first_header(msg, "date")),
        message_id=parse_message_id(first_header(msg, "message-id")),
        in_reply_to=parse_id_list(raw_headers(msg, "in-reply-to")),
        references=parse_id_list(raw_headers(msg, "references")),
        delivered_to=_delivered_to(msg),
        bcc=tuple(a.address for a in parse_addresses(raw_headers(msg, "bcc")) if a.address),
    )


def _record(
    raw: bytes,
    head: HeaderFields,
    text: str,
    automatic: str | None,
    forwarded: tuple[ForwardedMessage, ...],
    auth: tuple[str, ...] = (),
) -> ParsedMessage:
    return ParsedMessage(
        message_id=head.message_id or derived_message_id(raw),
        in_reply_to=head.in_reply_to,
        references=head.references,
        sender=head.sender,
        to=head.to,
        cc=head.cc,
        delivered_to=head.delivered_to,
        subject=head.subject,
        date=head.date,
        text=text,
        reply_text=strip_quoted(text)[:MAX_TEXT],
        automatic=automatic,
        forwarded=forwarded,
        authentication_results=auth,
        bcc=head.bcc,
    )


def _parse(raw: bytes) -> ParsedMessage:
    # Imported here: forwards and automatic build on the helpers above.
    from mailmentor.parsing.automatic import automatic_reason
    from mailmentor.parsing.forwards import extract_forwards

    msg = parse_bytes(raw[:MAX_RAW_BYTES])
    head = header_fields(msg)
    text = body_text(msg)
    forwarded = extract_forwards(msg, text=text, subject=head.subject)
    auth = authentication_results(msg)
    return _record(raw, head, text, automatic_reason(msg), forwarded, auth)


def _fallback(raw: bytes) -> ParsedMessage:
    """Headers only (no MIME recursion), for when full parsing failed."""
    from mailmentor.parsing.automatic import automatic_reason

    empty = HeaderFields(None, (), (), "", None, None, (), (), ())
    try:
        msg = BytesHeaderParser(policy=policy.compat32).parsebytes(raw[:MAX_RAW_BYTES])
        head = header_fields(msg)
        return _record(raw, head, "", automatic_reason(msg), (), authentication_results(msg))
    except Exception:  # even the header parse failed: a derived id only
        return _record(raw, empty, "", None, ())


def parse_message(raw: bytes) -> ParsedMessage:
    """Parse one message; never raises: broken input yields a sparser record, not an error."""
    if not isinstance(raw, bytes | bytearray | memoryview):
        raw = str(raw).encode("utf-8", "surrogateescape")
    raw = bytes(raw)
    try:
        return _parse(raw)
    except Exception:  # RecursionError and parser bugs included
        return _fallback(raw)
