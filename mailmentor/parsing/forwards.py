"""Forwarded messages: inline (Gmail, Outlook, Apple Mail, Thunderbird, Yahoo…) and attached.

Inline forwards are header blocks in the body (see quoting.find_header_blocks). A block that a
"forwarded" marker introduces is always a forward. An unmarked Outlook block (``From:/Sent:``) or
an "original message" banner is a forward unless the subject says reply ("RE:", "AW:"…), because
Outlook quotes replies the same way. An "On … wrote:" attribution counts only when the subject
says forward ("FW:", "TR:"…), as Outlook for Mac forwards that way. Attached ``message/rfc822``
parts (and ``.eml`` attachments) are read with the same header code as the message itself.
"""

from __future__ import annotations

import re
import textwrap
from datetime import UTC, datetime, timedelta, timezone
from email.message import Message
from html import unescape

from mailmentor.parsing.message import (
    MAX_TEXT,
    Address,
    ForwardedMessage,
    body_text,
    children,
    clean_name,
    content_type,
    filename_of,
    header_fields,
    header_text,
    is_attachment,
    normalize_address,
    parse_date,
    parse_id_list,
    parse_message_id,
    part_bytes,
    single_line,
    walk,
)
from mailmentor.parsing.mime import parse_bytes
from mailmentor.parsing.quoting import (
    MAX_SCAN_CHARS,
    HeaderBlock,
    dequote,
    find_attribution,
    find_header_blocks,
    normalize_newlines,
    quote_depth,
    strip_quoted,
)

#: At most this many forwarded messages are reported for one message.
MAX_FORWARDS = 50

_FORWARD_PREFIXES = frozenset((
    "fwd", "fw", "fwd.", "tr", "wg", "rv", "i", "vs", "vb", "enc", "pd", "videresend", "vl",
    "ilt", "i̇lt", "redir.", "redir", "doorst", "wtd", "trs", "přeposlat", "továbbítás", "rif",
    "转发", "轉寄", "転送", "전달", "пересл",
))  # fmt: skip
_REPLY_PREFIXES = frozenset((
    "re", "aw", "sv", "antw", "antwort", "r", "ris", "res", "odp", "ynt", "vá", "ats", "atb",
    "отв", "ответ", "відп", "回复", "回覆", "答复", "返信", "답장", "ha", "réf", "rép", "odg",
    "odgovor",
))  # fmt: skip
_PREFIX = re.compile(
    r"^\s*(?:\[[^\]]{0,40}\]\s*)?([^\s:：\[\]]{1,14}?)\s*(?:\[\d+\]|\(\d+\))?\s*[:：]"
)


def subject_kind(subject: str) -> str:
    """Classify a subject by its first prefix ("Fwd:", "RE:", "AW:"…): forward, reply or ""."""
    match = _PREFIX.match(subject or "")
    if not match:
        return ""
    prefix = match.group(1).casefold()
    if prefix in _FORWARD_PREFIXES:
        return "forward"
    if prefix in _REPLY_PREFIXES:
        return "reply"
    return ""


def strip_subject_prefixes(subject: str) -> str:
    """The subject without leading reply/forward prefixes."""
    previous = None
    while previous != subject and subject_kind(subject):
        previous = subject
        subject = _PREFIX.sub("", subject, count=1).strip()
    return subject


# --- loose addresses ("John Doe <j@x>", "'Doe, J' <j@x>; k@y", "J [mailto:j@x]") ----------------

_ANGLE = re.compile(r"<\s*([^<>\s]+@[^<>\s]+?)\s*>")
_ADDRESS_CHARS = re.compile(r"[^\s<>()\[\]\"'“”‘’«»,;:*]+")


def _bare_addresses(value: str) -> list[re.Match[str]]:
    """Runs of address characters that contain an '@' (linear: no backtracking regex)."""
    return [m for m in _ADDRESS_CHARS.finditer(value) if "@" in m.group(0).strip(".@")]


def _prepare(text: str) -> str:
    value = unescape(single_line(text))[:4000]
    value = re.sub(r"<\s*mailto:[^<>]*>", "", value, flags=re.I)
    value = re.sub(r"\[\s*mailto:\s*([^\]\s]*)\s*\]", r"<\1>", value, flags=re.I)
    value = re.sub(r"\(\s*mailto:\s*([^)\s]*)\s*\)", r"<\1>", value, flags=re.I)
    return value


def parse_loose_addresses(text: str) -> tuple[Address, ...]:
    """Addresses as clients print them in forwarded headers; names may contain commas."""
    value = _prepare(text)
    spans: list[tuple[int, int, str]] = [
        (m.start(), m.end(), m.group(1)) for m in _ANGLE.finditer(value)
    ]
    for match in _bare_addresses(value):
        if any(start <= match.start() < end for start, end, _ in spans):
            continue
        rest = value[match.end() :].lstrip(" \t\"'“”‘’«»*")
        if rest.startswith("<"):
            continue  # "bessie@x <bessie@x>": the first one is the display name
        spans.append((match.start(), match.end(), match.group(0).rstrip(".")))
    spans.sort()
    out: list[Address] = []
    previous_end = 0
    for start, end, raw_address in spans:
        address = normalize_address(raw_address)
        region = value[previous_end:start].strip().lstrip(")").strip().strip(",;").strip()
        if region.endswith("("):
            region = region[:-1].strip()
        pieces = [piece for piece in (p.strip() for p in region.split(";")) if piece]
        for orphan in pieces[:-1]:
            name = clean_name(orphan)
            if name:
                out.append(Address("", name))
        name = clean_name(pieces[-1], address) if pieces else ""
        if address or name:
            out.append(Address(address, name))
        previous_end = end
    if not spans:
        for piece in re.split(r"[;]", value):
            name = clean_name(piece)
            if name:
                out.append(Address("", name))
    return tuple(out[:200])


def _sender_of(text: str) -> Address | None:
    value = re.split(
        r"\s+on behalf of\s+|\s+im auftrag von\s+|\s+de la part de\s+", text, flags=re.I
    )
    found = parse_loose_addresses(value[0])
    with_address = [a for a in found if a.address]
    if with_address:
        return with_address[0]
    return found[0] if found else None


# --- loose dates ("Wed, Oct 27, 2021 at 9:31 AM", "25 October 2021 at 11:17:21 EEST") -----------

_MONTHS = {
    "jan": 1, "feb": 2, "mar": 3, "apr": 4, "may": 5, "jun": 6, "jul": 7, "aug": 8, "sep": 9,
    "oct": 10, "nov": 11, "dec": 12,
    "janv": 1, "févr": 2, "fevr": 2, "mars": 3, "avr": 4, "mai": 5, "juin": 6, "juil": 7,
    "août": 8, "aout": 8, "sept": 9, "déc": 12, "ene": 1, "abr": 4, "ago": 8, "dic": 12,
    "gen": 1, "mag": 5, "giu": 6, "lug": 7, "set": 9, "ott": 10, "mär": 3, "okt": 10,
    "dez": 12, "mei": 5, "maj": 5, "fev": 2, "out": 10, "dez.": 12,
}  # fmt: skip
_TZ_NAMES = {
    "UTC": 0, "GMT": 0, "Z": 0, "WET": 0, "BST": 60, "CET": 60, "CEST": 120, "MEZ": 60,
    "MESZ": 120, "EET": 120, "EEST": 180, "OESZ": 180, "EST": -300, "EDT": -240, "CST": -360,
    "CDT": -300, "MST": -420, "MDT": -360, "PST": -480, "PDT": -420, "IST": 330, "JST": 540,
}  # fmt: skip
_TIME = re.compile(
    r"(?<![\d./-])(\d{1,2})[:.](\d{2})(?:[:.](\d{2}))?(?![\d/-]|\.\d)\s*([AaPp]\.?[Mm]\.?)?"
)
_OFFSET = re.compile(r"(?:\b(?:GMT|UTC)\s*)?([+-])(\d{1,2})(?::?(\d{2}))?\b|\b([A-Z]{1,5})\b")
_YEAR = re.compile(r"\b(19\d{2}|20\d{2})\b")
_NUMERIC_DATE = re.compile(r"\b(\d{1,4})[/.\-](\d{1,2})[/.\-](\d{2,4})\b")
_RFC5322_DATE = re.compile(r"^(?:[A-Za-z]{3},\s*)?\d{1,2}\s+[A-Za-z]{3}\s+\d{2,4}\s+\d{1,2}:\d{2}")
_WORD = re.compile(r"[^\W\d_]+\.?")


def _offset(rest: str) -> timezone | None:
    for match in _OFFSET.finditer(rest):
        if match.group(4):
            minutes = _TZ_NAMES.get(match.group(4))
            if minutes is None:
                continue
        else:
            sign = -1 if match.group(1) == "-" else 1
            hours = int(match.group(2))
            extra = int(match.group(3) or 0)
            if hours > 14 and not match.group(3) and len(match.group(2)) > 2:
                continue
            minutes = sign * (hours * 60 + extra)
        if abs(minutes) <= 14 * 60:
            return timezone(timedelta(minutes=minutes))
    return None


def _day_month_year(text: str) -> tuple[int, int, int] | None:
    numeric = _NUMERIC_DATE.search(text)
    if numeric:
        a, b, c = (int(x) for x in numeric.groups())
        if len(numeric.group(1)) == 4:
            return c, b, a
        year = c + 2000 if c < 100 else c
        if b > 12 or (a <= 12 and re.search(r"[AaPp]\.?[Mm]\b", text)):
            return b, a, year  # month first (US)
        return a, b, year
    year_match = _YEAR.search(text)
    if not year_match:
        return None
    month = 0
    for word in _WORD.findall(text):
        key = word.lower().rstrip(".")
        month = _MONTHS.get(key[:4], 0) or _MONTHS.get(key[:3], 0)
        if month and len(key) >= 3:
            break
        month = 0
    if not month:
        return None
    without_year = text.replace(year_match.group(0), " ")
    without_time = _TIME.sub(" ", without_year)
    days = [int(d) for d in re.findall(r"\b(\d{1,2})(?:st|nd|rd|th|\.)?\b", without_time)]
    days = [d for d in days if 1 <= d <= 31]
    if not days:
        return None
    return days[0], month, int(year_match.group(0))


def parse_loose_date(text: str) -> datetime | None:
    """Dates as clients print them in forwards; RFC 5322 first, then common layouts. Aware."""
    value = single_line(text)[:200]
    if not value:
        return None
    if _RFC5322_DATE.match(value):
        strict = parse_date(value)
        if strict is not None:
            return strict
    try:
        found = _day_month_year(value)
        if found is None:
            return None
        day, month, year = found
        hour = minute = second = 0
        rest = value
        time_match = next(
            (m for m in _TIME.finditer(value) if int(m.group(1)) < 24 and int(m.group(2)) < 60),
            None,
        )
        if time_match:
            hour, minute = int(time_match.group(1)), int(time_match.group(2))
            second = int(time_match.group(3) or 0)
            meridiem = (time_match.group(4) or "").lower().replace(".", "")
            if meridiem == "pm" and hour < 12:
                hour += 12
            elif meridiem == "am" and hour == 12:
                hour = 0
            rest = value[time_match.end() :]
        zone = _offset(rest) if time_match else None
        return datetime(year, month, day, hour, minute, second, tzinfo=zone or UTC)
    except (ValueError, OverflowError):
        return None


# --- inline forwards ----------------------------------------------------------------------------


def _strip_levels(line: str, levels: int) -> str:
    for _ in range(levels):
        if not quote_depth(line):
            break
        line = re.sub(r"^[ \t]*>[ \t]?", "", line, count=1)
    return line


def _own_text(body_lines: list[str]) -> str:
    """The forwarded message's own text; unwraps bodies that are quoted one level deeper."""
    lines = body_lines
    first = next((line for line in lines if line.strip()), "")
    if quote_depth(first):  # Missive and MailMate quote the forwarded body itself
        lines = [_strip_levels(line, 1) for line in lines]
    for _ in range(3):
        text = strip_quoted("\n".join(lines))
        if text or not any(quote_depth(line) for line in lines):
            return text[:MAX_TEXT]
        lines = [_strip_levels(line, 1) for line in lines]
    return ""


def _from_block(block: HeaderBlock, body_lines: list[str]) -> ForwardedMessage:
    values: dict[str, list[str]] = {}
    for field, value in block.fields:
        values.setdefault(field, []).append(value)

    def first(field: str) -> str:
        return values.get(field, [""])[0]

    sender = _sender_of(first("from")) if first("from") else None
    return ForwardedMessage(
        sender=sender,
        to=parse_loose_addresses(", ".join(values.get("to", []))),
        cc=parse_loose_addresses(", ".join(values.get("cc", []))),
        subject=single_line(first("subject"))[:1000],
        date=parse_loose_date(first("date")),
        message_id=parse_message_id(first("message-id")) if first("message-id") else None,
        in_reply_to=parse_id_list(values.get("in-reply-to", [])),
        references=parse_id_list(values.get("references", [])),
        text=_own_text(body_lines),
    )


def _attribution_forward(lines: list[str], subject: str) -> ForwardedMessage | None:
    found = find_attribution(lines, len(lines))
    if found is None:
        return None
    header = " ".join(line.strip() for line in lines[found[0] : found[1]])
    sender = _attribution_sender(header)
    if sender is None:
        return None
    body = textwrap.dedent("\n".join(lines[found[1] :])).split("\n")
    return ForwardedMessage(
        sender=sender,
        to=(),
        cc=(),
        subject=strip_subject_prefixes(subject)[:1000],
        date=parse_loose_date(header),
        message_id=None,
        in_reply_to=(),
        references=(),
        text=_own_text(body),
    )


def _attribution_sender(header: str) -> Address | None:
    value = _prepare(header)
    angle = _ANGLE.search(value)
    bare = _bare_addresses(value)
    match = angle or (bare[0] if bare else None)
    if match is None:
        return None
    raw = match.group(1) if match is angle else match.group(0).rstrip(".")
    address = normalize_address(raw)
    if not address:
        return None
    before = value[: match.start()].rstrip(" (")
    quoted = re.search(r"[\"“„«]([^\"“”„«»]{1,100})[\"”»]\s*$", before)
    if quoted:
        name = quoted.group(1)
    else:
        name = before.rsplit(",", 1)[-1]
        if re.search(r"\d", name):
            name = ""
    return Address(address, clean_name(name, address))


def inline_forwards(text: str, subject: str = "") -> tuple[ForwardedMessage, ...]:
    """Forwarded messages written into a body, top to bottom (each with its own text)."""
    lines = normalize_newlines(text[:MAX_SCAN_CHARS]).split("\n")
    plain = [dequote(line) for line in lines]
    kind = subject_kind(subject)
    blocks = find_header_blocks(plain, limit=MAX_FORWARDS * 2)
    found: list[ForwardedMessage] = []
    for index, block in enumerate(blocks):
        if len(found) >= MAX_FORWARDS:
            break
        if kind == "reply" and (not block.explicit or quote_depth(lines[block.start])):
            continue
        end = blocks[index + 1].start if index + 1 < len(blocks) else len(lines)
        levels = quote_depth(lines[block.start])
        body = [_strip_levels(line, levels) for line in lines[block.body_start : end]]
        forwarded = _from_block(block, body)
        if forwarded.sender is not None:
            found.append(forwarded)
    if not found and not blocks and kind == "forward":
        attributed = _attribution_forward(lines, subject)
        if attributed is not None:
            found.append(attributed)
    return tuple(found[:MAX_FORWARDS])


# --- attached forwards --------------------------------------------------------------------------


def _from_message(inner: Message, depth: int) -> ForwardedMessage:
    head = header_fields(inner)
    return ForwardedMessage(
        sender=head.sender,
        to=head.to,
        cc=head.cc,
        subject=head.subject,
        date=head.date,
        message_id=head.message_id,
        in_reply_to=head.in_reply_to,
        references=head.references,
        text=strip_quoted(body_text(inner, depth))[:MAX_TEXT],
    )


def attached_forwards(msg: Message, depth: int = 0) -> tuple[ForwardedMessage, ...]:
    """``message/rfc822`` parts and ``.eml`` attachments, in MIME order."""
    found: list[ForwardedMessage] = []
    for part, level in walk(msg, depth):
        if level == depth or len(found) >= MAX_FORWARDS:
            continue
        ctype = content_type(part)
        try:
            if ctype in ("message/rfc822", "message/global"):
                inner = children(part)
                if inner:
                    found.append(_from_message(inner[0], level + 1))
            elif is_attachment(part) and filename_of(part).lower().endswith(".eml"):
                parsed = parse_bytes(part_bytes(part))
                found.append(_from_message(parsed, level + 1))
        except Exception:  # one unreadable attachment must not hide the others
            continue
    return tuple(found)


def extract_forwards(
    msg: Message, *, text: str | None = None, subject: str | None = None, depth: int = 0
) -> tuple[ForwardedMessage, ...]:
    """Inline forwards found in the body text, then attached messages."""
    if text is None:
        text = body_text(msg, depth)
    if subject is None:
        subject = header_text(msg, "subject")
    return (*inline_forwards(text, subject), *attached_forwards(msg, depth))[:MAX_FORWARDS]
