"""Telling the new part of a mail from what it quotes, in text alone.

Mail clients mark history in many ways: ``>`` prefixes, "On … wrote:" attributions, Outlook
``From:/Sent:/To:/Subject:`` blocks (in two dozen languages), dashed banners, signatures. This
module finds them with heuristics that are pure functions over text, so that reply parsing,
forward parsing and command reading all agree on where the new text ends.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

#: Work is bounded: no text longer than this is scanned line by line.
MAX_SCAN_CHARS = 200_000

# --- vocabulary -------------------------------------------------------------------------------

#: Header labels that clients write above quoted or forwarded mail, by the field they name.
#: Lower-case; matched case-insensitively with optional ``*bold*`` markers and spaces before
#: the colon ("De :" in French).
_LABELS: dict[str, tuple[str, ...]] = {
    "from": (
        "from", "sender", "de", "von", "van", "da", "od", "от", "fra", "från", "frá",
        "lähettäjä", "feladó", "kimden", "від", "šalje", "expeditorul", "expeditor", "de la",
        "mittente", "nadawca", "saatja", "afsender", "avsändare", "отправитель", "від кого",
        "gönderen", "remitente", "absender", "送信元", "送信者", "差出人", "发件人", "寄件者",
        "보낸 사람", "od koga",
    ),
    "date": (
        "date", "sent", "datum", "gesendet", "envoyé", "envoyé le", "date d'envoi", "fecha",
        "enviado", "enviado el", "enviada", "data", "inviato", "verzonden", "dato", "sendt",
        "skickat", "päivämäärä", "päiväys", "lähetetty", "dátum", "elküldve", "tarih",
        "gönderilen", "gönderildi", "дата", "отправлено", "відправлено", "надіслано", "wysłano",
        "wysłane", "odesláno", "odoslané", "poslano", "poslané", "dată", "trimis", "日付",
        "送信日時", "发送时间", "日期", "날짜", "보낸 날짜", "sent at",
    ),
    "to": (
        "to", "an", "à", "a", "pour", "para", "aan", "til", "till", "vastaanottaja", "címzett",
        "kime", "кому", "до", "komu", "do", "adresat", "pre", "prima", "către", "destinatarul",
        "送信先", "宛先", "收件人", "받는 사람", "recipient", "recipients",
    ),
    "cc": (
        "cc", "kopie", "kopie (cc)", "copie", "copie à", "kopi", "kopia", "kopio", "másolat",
        "másolatot kap", "bilgi", "копия", "копія", "dw", "kópia", "抄送", "참조", "bcc",
    ),
    "subject": (
        "subject", "betreff", "objet", "sujet", "asunto", "oggetto", "onderwerp", "emne", "ämne",
        "aihe", "tárgy", "konu", "тема", "temat", "předmět", "predmet", "naslov", "subiect",
        "subiectul", "件名", "主题", "主旨", "제목", "assunto",
    ),
    "reply-to": ("reply-to", "reply to", "antwort an", "répondre à", "responder a"),
    "message-id": ("message-id", "message id"),
    "in-reply-to": ("in-reply-to",),
    "references": ("references",),
}  # fmt: skip
_FIELD_OF: dict[str, str] = {label: field for field, labels in _LABELS.items() for label in labels}
_LABEL_ALT = "|".join(re.escape(label) for label in sorted(_FIELD_OF, key=len, reverse=True))
_LABEL_LINE = re.compile(rf"^\s*\*{{0,2}}({_LABEL_ALT})\*{{0,2}}\s*[:：]\*{{0,2}}[ \t]*(.*)$", re.I)
#: Labels glued together on one line, as Yahoo writes them ("…acme.com>To: …Subject: …").
_INLINE_LABEL = re.compile(rf"({_LABEL_ALT})\s?[:：]", re.I)

#: Words that make a banner or an introducing line an explicit *forward* marker.
_FORWARD_WORDS = re.compile(
    r"forward|fwd|weitergeleitet|transféré|transmis|réexpédié|reenviado|inoltrat|doorgestuurd"
    r"|videresend|vidarebefordra|välitetty|edelleenlähetetty|továbbított|przekazan|przesłan"
    r"|přeposlan|preposlan|proslijeđen|redirecționat|перенаправлен|пересла|переслан"
    r"|iletil|encaminhad|reencaminhad|переадрес|пересила|転送|转发|轉寄|전달",
    re.I,
)
#: Words of "original message" banners (Outlook: a reply or a forward, the subject tells which).
_ORIGINAL_WORDS = re.compile(
    r"original|ursprüngliche|d'origine|originale|oorspronkelijk|oprindelig|ursprungligt"
    r"|opprinnelig|alkuperäinen|eredeti|oryginaln|původní|pôvodn|izvorn|исходное|вихідне"
    r"|orijinal|原始邮件|元のメッセージ|message|nachricht|mensaje|mensagem|messaggio|bericht"
    r"|meddelelse|meddelande|melding|viesti|üzenet|wiadomo|zpráva|správa|poruka|mesaj"
    r"|сообщение|повідомлення|ileti|メッセージ",
    re.I,
)
_BANNER = re.compile(r"^\s*-{2,}\s*([^-].{0,80}?)\s*-{2,}\s*(.*)$")
_RULE_LINE = re.compile(r"^\s*(?:_{10,}|-{10,}|={4,}|\*{10,})\s*$")
_EMAIL = re.compile(r"[^\s<>()\[\]\"',;:]+@[^\s<>()\[\]\"',;:]+\.[^\s<>()\[\]\"',;:]+")
_HAS_TIME_OR_YEAR = re.compile(r"\b\d{1,2}[:.]\d{2}\b|\b(?:19|20)\d{2}\b|\b\d{1,2}/\d{1,2}/\d{2}\b")
_WROTE_WORDS = (
    r"wrote|writes|schrieb|schreef|a écrit|escribió|escreveu|ha scritto|scrisse|napisał\(a\)"
    r"|napisała|napisał|napsal\(a\)|napsal|napísal|написал\(а\)|написала|написал|написав|skrev"
    r"|skrev følgende|kirjoitti|geschreven|ezt írta|írta|yazdı|şunu yazdı"
    r"|scris|kirjutas|rašė|rakstīja|napisao|napisala|έγραψε|כתב|كتب|写道|寫道|が書きました"
    r"|님이 작성|wrote the following"
)
_WROTE = re.compile(
    r"(?:wrote|writes|schrieb|schreef|a écrit|escribió|escreveu|ha scritto|scrisse|napisał\(a\)"
    r"|napisała|napisał|napsal\(a\)|napsal|napísal|написал\(а\)|написала|написал|написав|skrev"
    r"|skrev følgende(?: den .*)?|kirjoitti(?: .*)?|geschreven|ezt írta|írta|yazdı|şunu yazdı"
    r"|scris|kirjutas|rašė|rakstīja|napisao|napisala|έγραψε|כתב|كتب|写道|寫道|が書きました"
    r"|님이 작성|wrote the following)\s*[:：]?\s*$",
    re.I,
)
#: The same words, ending the text (after ``ends_with_wrote`` has taken off what may follow).
_WROTE_AT_END = re.compile(rf"(?:{_WROTE_WORDS})$", re.I)
#: The longest text one of those words can match (re.I keeps lengths: it folds char by char).
_WROTE_SPAN = 20
#: The two words after which anything may follow ("kirjoitti 12.3.2019 klo 10.15:").
_WROTE_OPEN_ENDED = re.compile(r"kirjoitti |skrev følgende den ", re.I)


def ends_with_wrote(text: str) -> bool:
    """``_WROTE.search(text)``, without trying its 40 words at every position of the text.

    A match ends the text but for whitespace and one colon, so those are taken off and only the
    last ``_WROTE_SPAN`` characters are searched; the two open-ended forms are searched in full,
    only in text that has their word.
    """
    tail = text.rstrip()
    if tail.endswith((":", "：")):
        tail = tail[:-1].rstrip()
    if _WROTE_AT_END.search(tail[-_WROTE_SPAN:]):
        return True
    return _WROTE_OPEN_ENDED.search(text) is not None and _WROTE.search(text) is not None


_MOBILE_SIGNATURE = re.compile(
    r"^(?:sent from|sent with|sent via|sent using|get outlook for|envoyé de|envoyé depuis"
    r"|enviado desde|enviado do|enviado de|inviato da|verzonden (?:met|vanaf|van)|von meinem"
    r"|gesendet von|skickat från|sendt fra|lähetetty|wysłane z|odesláno z|отправлено с"
    r"|envoyé à partir de|obtenir outlook pour|holen sie sich outlook für|von outlook für)\b",
    re.I,
)


# --- small line helpers -------------------------------------------------------------------------


def normalize_newlines(text: str) -> str:
    """One newline convention, no byte-order marks or zero-width spaces at line starts."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if "\ufeff" not in text and "\u200b" not in text:
        return text  # the usual case: no need to look at every line start
    return re.sub(r"(?m)^[\ufeff\u200b]+", "", text)


def quote_depth(line: str) -> int:
    """How many ``>`` markers start the line (``> >`` and ``>>`` both count two)."""
    if line.strip() in (">:", ">："):
        return 0  # Gmail wraps "…<a@b.c\n>:" at the end of an attribution
    depth = 0
    for char in line:
        if char == ">":
            depth += 1
        elif char not in " \t":
            break
    return depth


def dequote(line: str) -> str:
    """The line without its leading quote markers."""
    return re.sub(r"^[ \t]*(?:>[ \t]?)+", "", line) if quote_depth(line) else line


def label_of(line: str) -> tuple[str, str] | None:
    """``("from", "Alan <a@b>")`` for a header-like line in any known language, else None."""
    if len(line) > 2000:
        return None
    match = _LABEL_LINE.match(line)
    if not match:
        return None
    return _FIELD_OF[match.group(1).lower()], match.group(2).strip()


def split_inline_labels(text: str) -> list[tuple[str, str]]:
    """Split ``From: a <x@y>To: b@c Subject: hi`` (labels glued on one line) into fields."""
    found = list(_INLINE_LABEL.finditer(text[:4000]))
    fields: list[tuple[str, str]] = []
    for index, match in enumerate(found):
        end = found[index + 1].start() if index + 1 < len(found) else len(text)
        fields.append((_FIELD_OF[match.group(1).lower()], text[match.end() : end].strip()))
    return fields


def is_rule_line(line: str) -> bool:
    """A line of underscores, dashes or equals signs only (a separator drawn by a client)."""
    return bool(_RULE_LINE.match(line))


def forward_words(text: str) -> bool:
    """Whether the text says "forwarded" in one of the languages clients use."""
    return bool(_FORWARD_WORDS.search(text))


def _banner_text(line: str) -> tuple[str, str] | None:
    """For ``---- Forwarded message ----[ rest]``: (inner words, rest); else None."""
    match = _BANNER.match(line)
    if not match or not re.search(r"[^\W\d_]", match.group(1)):
        return None
    return match.group(1).strip(), match.group(2).strip()


def _is_intro_line(line: str) -> bool:
    """ "Begin forwarded message:" and its translations: short, ends with a colon, no address."""
    stripped = line.strip()
    return (
        stripped.endswith((":", "："))
        and len(stripped) <= 80
        and "@" not in stripped
        and label_of(stripped) is None
        and bool(re.search(r"[^\W\d_]", stripped))
    )


# --- header blocks ------------------------------------------------------------------------------


@dataclass(frozen=True)
class HeaderBlock:
    """A block of header lines in a body: a forwarded message or Outlook-style quoted history."""

    start: int  # first line of the block (its marker line when there is one)
    body_start: int  # first line after the header fields
    fields: tuple[tuple[str, str], ...]  # (field, raw value) in order; field as in _LABELS
    explicit: bool  # introduced by a marker that says "forwarded"


def _read_fields(lines: list[str], start: int) -> tuple[list[tuple[str, str]], int]:
    """Read consecutive label lines from ``start``; return the fields and the next line index."""
    fields: list[tuple[str, str]] = []
    index = start
    limit = min(len(lines), start + 16)
    while index < limit:
        line = lines[index]
        found = label_of(line)
        if found and found[0] == "from" and any(field == "from" for field, _ in fields):
            break  # the next block starts here
        if found:
            fields.append(found)
        elif fields and line.strip() and _continues(fields[-1], line):
            field, value = fields[-1]
            fields[-1] = (field, f"{value} {line.strip()}")
        else:
            break
        index += 1
    return fields, index


def _continues(previous: tuple[str, str], line: str) -> bool:
    """A wrapped address list (or a Gmail "wrote:" split) continues on the next line."""
    field, value = previous
    if field not in ("from", "to", "cc"):
        return False
    stripped = line.strip()
    return (
        value.endswith((",", ";"))
        or (not value and "@" in stripped)
        or stripped.startswith(("<", "mailto:", "[mailto:"))
        or bool(re.match(r"^[^\s:]+@[^\s:]+[,;>]?$", stripped))
    )


def _fields_make_block(fields: list[tuple[str, str]], needs: int) -> bool:
    names = {field for field, _ in fields}
    return "from" in names and len(names - {"from"}) >= needs


def _block_at(lines: list[str], index: int) -> HeaderBlock | None:
    """A header block starting at ``index`` (with or without a marker line), else None."""
    line = lines[index]
    banner = _banner_text(line)
    marker = bool(banner) or is_rule_line(line) or _is_intro_line(line)
    if marker:
        explicit = forward_words(banner[0] if banner else line)
        if banner and banner[1]:  # Yahoo: the whole header on the banner line
            fields = split_inline_labels(banner[1])
            if _fields_make_block(fields, 1):
                return HeaderBlock(index, index + 1, tuple(fields), explicit)
        first = index + 1
        while first < len(lines) and first <= index + 3 and not lines[first].strip():
            first += 1
        if first < len(lines):
            fields, end = _read_fields(lines, first)
            if _fields_make_block(fields, 1):
                return HeaderBlock(index, end, tuple(fields), explicit)
        return None
    found = label_of(line)
    if not found or found[0] != "from":
        return None
    fields, end = _read_fields(lines, index)
    if not _fields_make_block(fields, 2):
        return None
    start = _extend_back(lines, index)
    return HeaderBlock(start, end, tuple(fields), forward_words(lines[start]) and start < index)


def _extend_back(lines: list[str], index: int) -> int:
    """Include a separator or "Message du : <date>" line right above an Outlook header block."""
    start = index
    probe = index - 1
    steps = 0
    while probe >= 0 and steps < 4:
        text = lines[probe].strip()
        if not text:
            probe -= 1
            steps += 1
            continue
        short_dated = len(text) <= 60 and re.match(r"^[^\W\d_][\w' ]{0,30}\s?:\s*\d", text)
        if is_rule_line(text) or _banner_text(text) or short_dated or _is_intro_line(text):
            start = probe
            probe -= 1
            steps += 1
            continue
        break
    return start


def find_header_blocks(lines: list[str], limit: int = 200) -> list[HeaderBlock]:
    """The first ``limit`` header blocks in ``lines`` (already de-quoted), top to bottom."""
    blocks: list[HeaderBlock] = []
    index = 0
    while index < len(lines) and len(blocks) < limit:
        block = _block_at(lines, index)
        if block is None:
            index += 1
            continue
        blocks.append(block)
        index = max(block.body_start, index + 1)
    return blocks


# --- attributions ("On … wrote:") ---------------------------------------------------------------


def is_attribution(text: str) -> bool:
    """Whether one (joined) line reads like "On <date>, <who> wrote:" in some language."""
    stripped = text.strip().strip("-").strip()
    if not stripped or len(stripped) > 400:
        return False
    wrote = ends_with_wrote(stripped)
    colon = stripped.endswith((":", "："))
    if not (wrote or colon):
        return False
    has_address = bool(_EMAIL.search(stripped))
    if wrote:
        return has_address or bool(re.search(r"\d", stripped))
    # Colon-only endings need a date and an address: "30.09.2017, 18.30, "John" <j@x.com>:".
    return has_address and bool(_HAS_TIME_OR_YEAR.search(stripped)) and label_of(stripped) is None


def find_attribution(lines: list[str], stop: int, start: int = 0) -> tuple[int, int] | None:
    """The first attribution in ``lines[start:stop]`` as (first line, last line + 1), unquoted."""
    for end in range(start, min(stop, len(lines))):
        line = lines[end].rstrip()
        if quote_depth(line) or not line:
            continue
        tail = line.strip().rstrip("-").rstrip()
        if not (tail.endswith((":", "：")) or ends_with_wrote(tail)):
            continue
        for size in (1, 2, 3):
            first = end - size + 1
            if first < start:
                break
            chunk = lines[first : end + 1]
            if any(not part.strip() or quote_depth(part) for part in chunk):
                break
            if is_attribution(" ".join(part.strip() for part in chunk)):
                while first > start and end - first < 3 and _attribution_head(lines[first - 1]):
                    first -= 1
                return first, end + 1
    return None


def _attribution_head(line: str) -> bool:
    """A line that can open a wrapped attribution ("On Nov 21, 2014," / "at 10:18,")."""
    stripped = line.strip()
    return (
        bool(stripped)
        and not quote_depth(line)
        and len(stripped) <= 80
        and not stripped.endswith((".", "!", "?", ":", ";"))
        and (stripped.endswith(",") or bool(re.search(r"\d", stripped)))
    )


# --- signatures ---------------------------------------------------------------------------------


def is_signature_start(line: str) -> bool:
    """``-- `` delimiters and "Sent from my iPhone"-style lines (but not sentences about them)."""
    stripped = line.strip()
    if stripped in ("--", "-- ", "—", "__") or line.rstrip("\n") == "-- ":
        return True
    if not _MOBILE_SIGNATURE.match(stripped):
        return False
    return "," not in stripped and len(stripped) <= 90 and len(stripped.split()) <= 9


# --- the public functions -----------------------------------------------------------------------


def history_start(lines: list[str]) -> int:
    """Index of the first line of quoted/forwarded history or signature (len(lines) if none).

    Attributions followed by ``>`` lines are not history starts (inline replies may follow); the
    caller drops those quote lines separately.
    """
    plain = [dequote(line) for line in lines]
    cut = len(lines)
    blocks = find_header_blocks(plain, limit=1)
    if blocks:
        cut = blocks[0].start
    for index in range(cut):
        banner = _banner_text(plain[index])
        if banner and (forward_words(banner[0]) or _ORIGINAL_WORDS.search(banner[0])):
            cut = index
            break
        if banner and is_attribution(banner[0]):
            cut = index
            break
    for index in range(cut):
        if not quote_depth(lines[index]) and is_signature_start(lines[index]):
            cut = index
            break
    for index in range(cut):
        if not quote_depth(lines[index]) and re.match(r"^\s*_{10,}\s*$", lines[index]):
            cut = index
            break
    return cut


def _attribution_cuts(lines: list[str], cut: int) -> tuple[int, set[int]]:
    """Apply attributions: one followed by unquoted text starts history; else drop its lines."""
    dropped: set[int] = set()
    offset = 0
    while offset < cut:
        found = find_attribution(lines, cut, start=offset)
        if found is None:
            break
        first, end = found
        after = end
        while after < cut and not lines[after].strip():
            after += 1
        if after < len(lines) and quote_depth(lines[after]):
            dropped.update(range(first, end))
            offset = end
            continue
        return first, dropped
    return cut, dropped


def quoted_lines(lines: list[str]) -> list[bool]:
    """Which lines are quoted, counting a wrapped line caught between two quoted ones."""
    quoted = [quote_depth(line) > 0 for line in lines]
    for index in range(1, len(lines)):
        if quoted[index] or not lines[index].strip():
            continue
        before = lines[index - 1]
        after_quoted = index + 1 >= len(lines) or quoted[index + 1]
        if quoted[index - 1] and dequote(before).strip() and after_quoted:
            quoted[index] = True
    return quoted


def strip_quoted(text: str) -> str:
    """The new part of a message: quoted history, attributions, forwards and signature removed."""
    if not text:
        return ""
    lines = normalize_newlines(text[:MAX_SCAN_CHARS]).split("\n")
    cut = history_start(lines)
    cut, dropped = _attribution_cuts(lines, cut)
    quoted = quoted_lines(lines)
    kept = [
        line.rstrip()
        for index, line in enumerate(lines[:cut])
        if index not in dropped and not quoted[index]
    ]
    return _trim_blank_runs("\n".join(kept))


def _trim_blank_runs(text: str) -> str:
    """No leading/trailing blank lines and at most one blank line in a row."""
    return re.sub(r"\n{3,}", "\n\n", text).strip("\n").strip()


def excerpt(text: str, limit: int = 600) -> str:
    """A short readable excerpt: whitespace collapsed per paragraph, cut at a word with "…"."""
    limit = max(1, limit)
    paragraphs = [" ".join(part.split()) for part in re.split(r"\n\s*\n", text or "")]
    joined = "\n\n".join(part for part in paragraphs if part)
    if len(joined) <= limit:
        return joined
    room = joined[: limit - 1]
    space = max(room.rfind(" "), room.rfind("\n"))
    if space > limit // 3:
        room = room[:space]
    return room.rstrip(" \n,;:-") + "…"


def own_lines(reply_text: str, *, max_lines: int, max_line: int) -> list[str]:
    """A reply's own non-empty lines, top to bottom, up to the first quoted one (at most
    ``max_lines``, each cut at ``max_line``): where reply commands are read. Never raises."""
    try:
        text = strip_quoted(reply_text or "") or ""
    except Exception:  # hostile text must not stop command handling
        text = reply_text or ""
    lines: list[str] = []
    for line in text[: max_line * max(max_lines, 20)].replace("\r", "\n").split("\n"):
        if not line.strip():
            continue
        if quote_depth(line):
            break  # quoted text: nothing new to read below (nor, top-posted, above)
        lines.append(line.strip()[:max_line])
        if len(lines) >= max_lines:
            break
    return lines
