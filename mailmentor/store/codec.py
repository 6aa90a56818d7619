"""How loops, their texts, their history and people are written into Redis values, compactly.

A record is ``<rev>|<json array>``: the revision in front so the store's Lua can compare it
without decoding, then the fields by position (no names), enum members as one-letter codes and
times as whole epoch seconds. Texts (excerpts, thread ids) are deflated. History events are JSON
arrays, one per line, appended as they happen. The code tables only ever grow: a letter once
given keeps its meaning, so old data stays readable.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import Any

from mailmentor.errors import StoreError
from mailmentor.model import (
    ActionKind,
    Event,
    EventType,
    Kind,
    Loop,
    Person,
    PlannedAction,
    Stage,
)
from mailmentor.people import Counts, PersonRecord

_STAGES = {
    Stage.ASKED: "a",
    Stage.ADVISED: "v",
    Stage.ACTED: "c",
    Stage.REPORTED: "r",
    Stage.GAVE_BACK: "g",
    Stage.CLOSED: "x",
    Stage.SNOOZED: "s",
    Stage.DROPPED: "d",
}
_KINDS = {Kind.ADVICE: "a", Kind.INTRO: "i", Kind.MENTEE: "m", Kind.GIVE: "g", Kind.LEARN: "l"}
_ACTIONS = {
    ActionKind.REMIND: "r",
    ActionKind.GIVE_UP: "g",
    ActionKind.WAKE: "w",
    ActionKind.STILL_RELEVANT: "s",
}
_EVENTS = {
    EventType.CREATED: "c",
    EventType.MESSAGE: "m",
    EventType.ADVICE: "a",
    EventType.COMMAND: "k",
    EventType.REMINDER_SENT: "s",
    EventType.REMINDER_FAILED: "f",
    EventType.SNOOZED: "z",
    EventType.WOKE: "w",
    EventType.GAVE_UP: "g",
    EventType.NOTE: "n",
}
_STAGE_OF = {v: k for k, v in _STAGES.items()}
_KIND_OF = {v: k for k, v in _KINDS.items()}
_ACTION_OF = {v: k for k, v in _ACTIONS.items()}
_EVENT_OF = {v: k for k, v in _EVENTS.items()}

_MESSAGE_SOURCE = ("message <", ">")
_DEFLATED, _PLAIN = b"z", b"j"
#: Texts shorter than this are not worth deflating.
_DEFLATE_FROM = 80


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _t(when: datetime | None) -> int | None:
    return None if when is None else int(when.timestamp())


def _at(seconds: int | None) -> datetime | None:
    return None if seconds is None else datetime.fromtimestamp(seconds, UTC)


def _when(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def as_text(value: object) -> str:
    """Redis answers bytes (or str, with decode_responses); the store takes either."""
    return value.decode() if isinstance(value, bytes) else str(value)


_text = as_text


def split_rev(raw: bytes | str) -> tuple[int, str]:
    """(revision, payload) of a versioned value."""
    text = _text(raw)
    rev, sep, payload = text.partition("|")
    if not sep or not rev.isdigit():
        raise StoreError(f"not a versioned value: {text[:60]!r}")
    return int(rev), payload


# -- loops ------------------------------------------------------------------------------------
#
# A record is ``<rev>|[codes, address, name, subject, created, entered, action, nudges, last,
# contact, ignored, first, until, snoozed_from, woke]``: ``codes`` packs kind, stage, resume
# stage and furthest stage (a letter each); ``created`` is epoch seconds and every other time
# is seconds after it; ``action`` is [kind+stage, due, sequence, rule]. Trailing empty fields
# are left out.


def _since(when: datetime | None, base: int) -> int | None:
    return None if when is None else int(when.timestamp()) - base


def _after(offset: int | None, base: int) -> datetime | None:
    return None if offset is None else _when(base + offset)


#: codes … entered are always written; the rest only up to the last one that is set.
_REQUIRED_FIELDS = 6


def encode_loop(loop: Loop, rev: int) -> str:
    """The loop's record (everything but its texts and history) at revision ``rev``."""
    base = int(loop.created_at.timestamp())
    action = loop.next_action
    codes = (
        _KINDS[loop.kind]
        + _STAGES[loop.stage]
        + _STAGES[loop.resume_stage]
        + _STAGES[loop.furthest]
    )
    fields: list[Any] = [
        codes,
        loop.mentor.address,
        loop.mentor.name,
        loop.subject,
        base,
        _since(loop.stage_entered_at, base),
        None
        if action is None
        else [
            _ACTIONS[action.kind] + _STAGES[action.stage],
            _since(action.due_at, base),
            action.sequence,
            action.rule,
        ],
        loop.nudges or None,
        _since(loop.last_reminder_at, base),
        _since(loop.last_contact_at, base),
        loop.ignored or None,
        _since(loop.first_reminder_at, base),
        _since(loop.snoozed_until, base),
        _STAGES[loop.snoozed_from] if loop.snoozed_from else None,
        _since(loop.woke_at, base),
    ]
    while len(fields) > _REQUIRED_FIELDS and fields[-1] is None:
        fields.pop()
    return f"{int(rev)}|{_json(fields)}"


_RECORD_FIELDS = 15


def decode_loop(loop_id: str, raw: bytes | str, texts: bytes | None = None) -> Loop:
    """A Loop from its record (and its texts when given; else they stay empty)."""
    try:
        rev, payload = split_rev(raw)
        fields = list(json.loads(payload))
        fields += [None] * (_RECORD_FIELDS - len(fields))
        (
            codes,
            address,
            name,
            subject,
            base,
            entered,
            action,
            nudges,
            last,
            contact,
            ignored,
            first,
            until,
            snoozed_from,
            woke,
        ) = fields
        kind, stage, resume, furthest = codes
        ask, advice, thread = decode_texts(texts) if texts is not None else ("", "", [])
        return Loop.model_construct(
            id=loop_id,
            kind=_KIND_OF[kind],
            mentor=Person(address=address, name=name),
            subject=subject,
            stage=_STAGE_OF[stage],
            created_at=_when(base),
            stage_entered_at=_when(base + entered),
            message_ids=thread,
            first_reminder_at=_after(first, base),
            ask_excerpt=ask,
            advice_excerpt=advice,
            nudges=nudges or 0,
            last_reminder_at=_after(last, base),
            snoozed_until=_after(until, base),
            snoozed_from=_STAGE_OF[snoozed_from] if snoozed_from else None,
            next_action=None
            if action is None
            else PlannedAction(
                kind=_ACTION_OF[action[0][0]],
                due_at=_when(base + action[1]),
                stage=_STAGE_OF[action[0][1]],
                sequence=action[2],
                rule=action[3],
            ),
            ignored=ignored or 0,
            woke_at=_after(woke, base),
            resume_stage=_STAGE_OF[resume],
            furthest=_STAGE_OF[furthest],
            last_contact_at=_after(contact, base),
            events=[],
            rev=rev,
        )
    except (StoreError, ValueError, TypeError, KeyError, IndexError) as exc:
        raise StoreError(f"loop {loop_id}: unreadable record ({exc})") from exc


def encode_texts(loop: Loop) -> bytes:
    """The loop's texts: what reminders quote and thread to, read only when one is written."""
    data = _json([loop.ask_excerpt, loop.advice_excerpt, loop.message_ids]).encode()
    if len(data) < _DEFLATE_FROM:
        return _PLAIN + data
    packer = zlib.compressobj(9, zlib.DEFLATED, -15)
    return _DEFLATED + packer.compress(data) + packer.flush()


def decode_texts(raw: bytes) -> tuple[str, str, list[str]]:
    try:
        if raw[:1] == _DEFLATED:
            data = zlib.decompress(raw[1:], -15)
        elif raw[:1] == _PLAIN:
            data = raw[1:]
        else:
            raise ValueError(f"unknown texts format {raw[:1]!r}")
        ask, advice, thread = json.loads(data)
        return str(ask), str(advice), [str(i) for i in thread]
    except (ValueError, TypeError, zlib.error) as exc:
        raise StoreError(f"unreadable loop texts ({exc})") from exc


def texts_of(loop: Loop) -> tuple[str, str, list[str]]:
    return loop.ask_excerpt, loop.advice_excerpt, loop.message_ids


# -- history ----------------------------------------------------------------------------------
#
# One event per line: [seconds after ``base`` (the loop's creation), type+stage, source,
# detail?]. Sources the code writes are shortened ("message <id>" -> "<id>", "rule x" -> "=x"),
# and the phrases intake writes in details become two-byte tokens.

_PHRASES = (
    "asked by BCC",
    "advice forwarded",
    "more advice forwarded",
    "wrote to mentor",
    "followed up",
    "joined the thread",
    " (matched by References)",
    " (matched by subject and mentor (no References match))",
    "cycle complete",
    "stopped by the user",
    "reopened",
    "no progress within give_up_after",
    "paused: still relevant? (reply reopen to resume)",
    "command acted",
    "command reported",
    "command advised",
    " (matched by thread root)",
)
_TOKEN = "\x7f"  # never in text mailmentor keeps: parsing removes control characters


def _pack_detail(detail: str) -> str:
    if _TOKEN in detail:
        return _TOKEN + _TOKEN + detail  # kept literally
    for index, phrase in enumerate(_PHRASES):
        detail = detail.replace(phrase, _TOKEN + chr(0x30 + index))
    return detail


def _unpack_detail(detail: str) -> str:
    if detail.startswith(_TOKEN + _TOKEN):
        return detail[2:]
    if _TOKEN not in detail:
        return detail
    parts = detail.split(_TOKEN)
    return parts[0] + "".join(_PHRASES[ord(p[0]) - 0x30] + p[1:] for p in parts[1:])


def _pack_source(source: str) -> str:
    head, tail = _MESSAGE_SOURCE
    if source.startswith(head) and source.endswith(tail):
        return source[len(head) - 1 :]  # "<id>"
    if source.startswith("rule "):
        return "=" + source[5:]
    if source[:1] in ("<", "=", "\\"):
        return "\\" + source
    return source


def _unpack_source(source: str) -> str:
    if source.startswith("<"):
        return "message " + source
    if source.startswith("="):
        return "rule " + source[1:]
    if source.startswith("\\"):
        return source[1:]
    return source


def encode_event(event: Event, base: int = 0) -> str:
    fields: list[Any] = [
        int(event.at.timestamp()) - base,
        _EVENTS[event.type] + _STAGES[event.stage],
        _pack_source(event.source),
    ]
    if event.detail:
        fields.append(_pack_detail(event.detail))
    return _json(fields)


def decode_event(line: str, base: int = 0) -> Event:
    at, codes, source, *detail = json.loads(line)
    return Event.model_construct(
        at=_when(base + at),
        type=_EVENT_OF[codes[0]],
        stage=_STAGE_OF[codes[1]],
        source=_unpack_source(source),
        detail=_unpack_detail(detail[0]) if detail else "",
    )


def encode_events(events: Iterable[Event], base: int = 0) -> str:
    return "\n".join(encode_event(e, base) for e in events)


def decode_history(raw: bytes | str | None, base: int = 0) -> list[Event]:
    if not raw:
        return []
    try:
        return [decode_event(line, base) for line in _text(raw).split("\n") if line]
    except (ValueError, TypeError, KeyError, IndexError) as exc:
        raise StoreError(f"unreadable loop history ({exc})") from exc


# -- people -----------------------------------------------------------------------------------


def encode_person(person: PersonRecord, rev: int) -> str:
    data: dict[str, Any] = {"o": person.open}
    if person.name:
        data["n"] = person.name
    if person.ended:
        data["e"] = list(person.ended)
    counts = person.counts
    if counts != Counts():
        data["c"] = [counts.advice, counts.reported, counts.given]
    if person.mentee_ended:
        data["m"] = person.mentee_ended
    if person.last_contact is not None:
        data["t"] = _t(person.last_contact)
    if person.gifts:
        data["g"] = [encode_event(g) for g in person.gifts]
    return f"{int(rev)}|{_json(data)}"


def decode_person(address: str, raw: bytes | str) -> PersonRecord:
    try:
        rev, payload = split_rev(raw)
        data = json.loads(payload)
        advice, reported, given = data.get("c", (0, 0, 0))
        return PersonRecord(
            address=address,
            name=data.get("n", ""),
            open={str(k): str(v) for k, v in data.get("o", {}).items()},
            ended=tuple(data.get("e", ())),
            counts=Counts(advice, reported, given),
            mentee_ended=int(data.get("m", 0)),
            last_contact=_at(data.get("t")),
            gifts=tuple(decode_event(g) for g in data.get("g", ())),
            rev=rev,
        )
    except (StoreError, ValueError, TypeError, KeyError) as exc:
        raise StoreError(f"person {address}: unreadable record ({exc})") from exc


# -- the Message-ID index ---------------------------------------------------------------------


def decode_index(raw: bytes | str | None) -> Iterator[tuple[str, bool]]:
    """(loop id, applied) pairs of one index entry (``"abc+ def"``)."""
    for token in _text(raw or "").split():
        yield (token[:-1], True) if token.endswith("+") else (token, False)
