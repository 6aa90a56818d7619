"""One JSON shape for a loop, and every loop and event shaped for export (JSON or CSV).

Pure: loops (and person records, for the gifts) in, plain data out. `loops --json`,
`show --json` and `export` all print `loop_json`, so a loop reads the same wherever it is
printed: the mentor is always ``{"address", "name"}`` and every time is ISO 8601 in UTC with
``Z``.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from mailmentor.model import Event, Loop, Person
from mailmentor.people import PersonRecord
from mailmentor.relationships import PersonSummary


def utc_z(when: datetime | None) -> str | None:
    """``2026-01-05T09:30:00Z``: the one way a time is written in JSON and CSV."""
    if when is None:
        return None
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def person_json(person: Person) -> dict[str, str]:
    return {"address": person.address, "name": person.name}


#: An ISO 8601 time with an offset inside stored text (a snooze's "until …+00:00").
_ISO_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:\d{2})")


def utc_text(text: str) -> str:
    """``text`` with every ISO time in it written as `utc_z` writes times."""

    def utc(match: re.Match[str]) -> str:
        try:
            return utc_z(datetime.fromisoformat(match.group())) or match.group()
        except ValueError:
            return match.group()

    return _ISO_TIME.sub(utc, text)


def event_json(event: Event) -> dict[str, Any]:
    return {
        "at": utc_z(event.at),
        "type": str(event.type),
        "stage": str(event.stage),
        "source": event.source,
        "detail": utc_text(event.detail),
    }


def loop_json(loop: Loop, *, events: bool = False) -> dict[str, Any]:
    """A loop as every command prints it; with ``events``, its history in time order too."""
    action = loop.next_action
    shaped: dict[str, Any] = {
        "id": loop.id,
        "kind": str(loop.kind),
        "stage": str(loop.stage),
        "mentor": person_json(loop.mentor),
        "subject": loop.subject,
        "created_at": utc_z(loop.created_at),
        "stage_entered_at": utc_z(loop.stage_entered_at),
        "last_contact_at": utc_z(loop.last_contact_at),
        "snoozed_until": utc_z(loop.snoozed_until),
        "next_reminder_at": utc_z(loop.next_reminder_at),
        "next_action": None
        if action is None
        else {"kind": str(action.kind), "stage": str(action.stage), "rule": action.rule},
        "ask_excerpt": loop.ask_excerpt,
        "advice_excerpt": loop.advice_excerpt,
    }
    if events:
        shaped["events"] = [event_json(e) for e in _in_time_order(loop.events)]
    return shaped


def summary_json(summary: PersonSummary) -> dict[str, Any]:
    """One person's relationship record (`mentors --json`, `show PERSON --json`)."""
    return {
        **person_json(summary.person),
        "asks": summary.asks,
        "advice": summary.advice,
        "reports": summary.reports,
        "gives": summary.gives,
        "they_asked_you": summary.they_asked_you,
        "open_loops": summary.open_loops,
        "first_contact": utc_z(summary.first_contact),
        "last_contact": utc_z(summary.last_contact),
        "age_days": summary.age_days,
        "median_days_advice_to_acted": summary.days_to_act,
        "median_days_acted_to_reported": summary.days_to_report,
        "owes": [{"move": str(o.move), "loop_ids": list(o.loop_ids)} for o in summary.owes],
        "standing": str(summary.standing),
        "loop_ids": list(summary.loop_ids),
    }


def gifts_json(people: Iterable[PersonRecord]) -> list[dict[str, Any]]:
    """Value given outside any loop (mentor+gave@), one entry per gift, in time order."""
    gifts = [(record, gift) for record in people for gift in record.gifts]
    gifts.sort(key=lambda pair: (pair[1].at, pair[0].address))
    return [
        {
            "address": record.address,
            "name": record.name,
            "at": utc_z(gift.at),
            "source": gift.source,
            "detail": utc_text(gift.detail),
        }
        for record, gift in gifts
    ]


def export_document(loops: Sequence[Loop], people: Iterable[PersonRecord] = ()) -> dict[str, Any]:
    """Everything for ``export --format json``: every loop with its events, and the gifts."""
    return {
        "loops": [loop_json(lp, events=True) for lp in _oldest_first(loops)],
        "gifts": gifts_json(people),
    }


#: The CSV's columns: the loop's, repeated on each of its events, then the event's.
CSV_COLUMNS: tuple[str, ...] = (
    "loop_id",
    "kind",
    "stage",
    "mentor_address",
    "mentor_name",
    "subject",
    "created_at",
    "event_at",
    "event_kind",
    "event_stage",
    "source",
    "note",
)


def csv_rows(loops: Sequence[Loop]) -> list[dict[str, str]]:
    """One row per event (a loop with no events gets one row with empty event columns)."""
    rows = []
    for loop in _oldest_first(loops):
        base = {
            "loop_id": loop.id,
            "kind": str(loop.kind),
            "stage": str(loop.stage),
            "mentor_address": loop.mentor.address,
            "mentor_name": loop.mentor.name,
            "subject": loop.subject,
            "created_at": utc_z(loop.created_at) or "",
        }
        empty = dict.fromkeys(CSV_COLUMNS[len(base) :], "")
        events = _in_time_order(loop.events)
        if not events:
            rows.append({**base, **empty})
        for event in events:
            rows.append(
                {
                    **base,
                    "event_at": utc_z(event.at) or "",
                    "event_kind": str(event.type),
                    "event_stage": str(event.stage),
                    "source": event.source,
                    "note": utc_text(event.detail),
                }
            )
    return rows


#: A cell a spreadsheet would run as a formula starts with one of these (subjects come from mail).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(cell: str) -> str:
    """``cell`` as text a spreadsheet shows and never runs (OWASP's CSV injection advice)."""
    return f"'{cell}" if cell.startswith(_FORMULA_START) else cell


def csv_text(loops: Sequence[Loop]) -> str:
    """``export --format csv``: a header and `csv_rows`, as the stdlib csv module writes them."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS)
    writer.writeheader()
    writer.writerows({k: spreadsheet_safe(v) for k, v in row.items()} for row in csv_rows(loops))
    return out.getvalue()


def _oldest_first(loops: Iterable[Loop]) -> list[Loop]:
    return sorted(loops, key=lambda lp: (lp.created_at, lp.id))


def _in_time_order(events: Iterable[Event]) -> list[Event]:
    return sorted(events, key=lambda e: e.at)  # stable: events of one second keep their order
