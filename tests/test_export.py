"""`mailmentor export`: the pure shaping of every loop and event (JSON and CSV), and the command
against the real store, its output parsed back and checked loop by loop, event by event."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from mailmentor.export import (
    CSV_COLUMNS,
    csv_rows,
    export_document,
    loop_json,
    spreadsheet_safe,
    utc_text,
    utc_z,
)
from mailmentor.model import Kind, Loop, Stage
from mailmentor.stages import snooze
from mailmentor.store import Store
from tests.cli_support import run
from tests.loop_stories import ALAN, DAY, GRACE, T0, gift, records_of, story
from tests.store_support import all_loops, put_gift, put_loop

AD, AC, R, C = Stage.ADVISED, Stage.ACTED, Stage.REPORTED, Stage.CLOSED


def some_loops() -> list[Loop]:
    snoozed = story("snoozed-1", (AD, 2), mentor=GRACE, start=T0 + DAY)
    return [
        story("whole-1", (AD, 2), (AC, 4), (R, 10), (C, 12), subject='Pricing, "tiers"; and more'),
        snooze(snoozed, T0 + 20 * DAY, T0 + 5 * DAY, "command snooze 2w"),
        story("mentee-1", kind=Kind.MENTEE, start=T0 + 3 * DAY),
    ]


# -- pure shaping --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("when", "written"),
    [
        (datetime(2026, 1, 5, 9, 30, tzinfo=UTC), "2026-01-05T09:30:00Z"),
        (datetime(2026, 1, 5, 10, 30, tzinfo=timezone(timedelta(hours=1))), "2026-01-05T09:30:00Z"),
        (None, None),
    ],
)
def test_times_are_utc_with_z(when: datetime | None, written: str | None) -> None:
    assert utc_z(when) == written


@pytest.mark.parametrize(
    ("text", "written"),
    [
        ("until 2026-01-19T09:00:00+00:00", "until 2026-01-19T09:00:00Z"),
        ("until 2026-01-19T10:00:00+01:00, then", "until 2026-01-19T09:00:00Z, then"),
        ("no time here 2026-01-19", "no time here 2026-01-19"),
    ],
)
def test_times_inside_details_are_utc_with_z(text: str, written: str) -> None:
    assert utc_text(text) == written


def test_a_loop_has_one_shape_and_events_only_when_asked() -> None:
    loop = some_loops()[0]
    plain, full = loop_json(loop), loop_json(loop, events=True)
    assert plain["mentor"] == {"address": ALAN.address, "name": ALAN.name}
    assert plain["created_at"] == "2026-01-05T09:00:00Z"
    assert "events" not in plain
    assert {k: v for k, v in full.items() if k != "events"} == plain
    assert [e["type"] for e in full["events"]] == [
        "created",
        "advice",
        "command",
        "message",
        "command",
        "command",
    ]
    assert json.loads(json.dumps(full)) == full  # plain JSON, nothing a dump would change


def test_the_document_has_every_loop_oldest_first_and_the_gifts() -> None:
    loops = some_loops()
    given = gift(T0 + 7 * DAY)
    document = export_document(loops, records_of(loops, {GRACE.address: [given]}))
    assert [lp["id"] for lp in document["loops"]] == ["whole-1", "snoozed-1", "mentee-1"]
    assert document["gifts"] == [
        {
            "address": GRACE.address,
            "name": GRACE.name,
            "at": "2026-01-12T09:00:00Z",
            "source": given.source,
            "detail": "gave: an intro to a customer",
        }
    ]


def test_csv_rows_are_one_per_event_with_the_loop_repeated() -> None:
    loops = some_loops()
    rows = csv_rows(loops)
    assert len(rows) == sum(len(lp.events) for lp in loops)
    assert all(tuple(row) == CSV_COLUMNS for row in rows)
    whole = [row for row in rows if row["loop_id"] == "whole-1"]
    assert {(r["mentor_address"], r["mentor_name"], r["stage"]) for r in whole} == {
        (ALAN.address, ALAN.name, "closed")
    }
    assert [r["event_stage"] for r in whole] == [
        "asked",
        "advised",
        "acted",
        "reported",
        "gave_back",
        "closed",
    ]
    assert whole[4]["note"] == "sent a thank-you note"


def test_a_loop_without_events_still_gets_a_row() -> None:
    bare = some_loops()[2].model_copy(update={"events": []})
    (row,) = csv_rows([bare])
    assert (row["loop_id"], row["event_at"], row["event_kind"]) == ("mentee-1", "", "")


# -- the command, against the real store (conftest's cli_store) -----------------------------------


def stored(store: Store) -> list[Loop]:
    for loop in some_loops():
        put_loop(store, loop)
    put_gift(store, GRACE.address, gift(T0 + 7 * DAY))
    return all_loops(store)


def events_of(loop: Loop) -> list[tuple[str, str, str, str, str]]:
    return [
        (utc_z(e.at) or "", str(e.type), str(e.stage), e.source, utc_text(e.detail))
        for e in sorted(loop.events, key=lambda e: e.at)
    ]


def test_export_json_has_every_loop_and_event(
    cli_store: Store, capsys: pytest.CaptureFixture[str]
) -> None:
    loops = stored(cli_store)
    result = run(capsys, "export")
    assert result.code == 0, result.err
    document = json.loads(result.out)
    assert set(document) == {"loops", "gifts"}
    by_id = {lp["id"]: lp for lp in document["loops"]}
    assert set(by_id) == {lp.id for lp in loops}
    for loop in loops:
        exported: dict[str, Any] = by_id[loop.id]
        assert exported["mentor"] == {"address": loop.mentor.address, "name": loop.mentor.name}
        assert (exported["stage"], exported["kind"], exported["subject"]) == (
            str(loop.stage),
            str(loop.kind),
            loop.subject,
        )
        assert [
            (e["at"], e["type"], e["stage"], e["source"], e["detail"]) for e in exported["events"]
        ] == events_of(loop)
    assert [g["address"] for g in document["gifts"]] == [GRACE.address]
    # Each exported loop is what `show --json` prints.
    shown = json.loads(run(capsys, "show", "snoozed-1", "--json").out)
    assert shown == by_id["snoozed-1"]


def test_export_csv_has_a_row_for_every_event(
    cli_store: Store, capsys: pytest.CaptureFixture[str]
) -> None:
    loops = stored(cli_store)
    result = run(capsys, "export", "--format", "csv")
    assert result.code == 0, result.err
    rows = list(csv.DictReader(io.StringIO(result.out)))
    assert tuple(rows[0]) == CSV_COLUMNS
    for loop in loops:
        mine = [row for row in rows if row["loop_id"] == loop.id]
        assert [
            (r["event_at"], r["event_kind"], r["event_stage"], r["source"], r["note"]) for r in mine
        ] == events_of(loop)
        assert {(r["kind"], r["stage"], r["mentor_address"], r["subject"]) for r in mine} == {
            (str(loop.kind), str(loop.stage), loop.mentor.address, loop.subject)
        }
    assert len(rows) == sum(len(lp.events) for lp in loops)


@pytest.mark.parametrize("fmt", ["json", "csv"])
def test_export_to_a_file_writes_it_whole_and_says_so(
    cli_store: Store, capsys: pytest.CaptureFixture[str], tmp_path: Path, fmt: str
) -> None:
    loops = stored(cli_store)
    target = tmp_path / "out" / f"mailmentor.{fmt}"
    target.parent.mkdir()
    target.write_text("an older export")
    result = run(capsys, "export", "--format", fmt, "--output", str(target))
    assert result.code == 0, result.err
    assert result.out == ""
    events = sum(len(lp.events) for lp in loops)
    assert result.err.strip() == f"wrote 3 loops and {events} events to {target}"
    assert [p.name for p in target.parent.iterdir()] == [target.name]  # no temporary file left
    on_stdout = run(capsys, "export", "--format", fmt).out
    assert target.read_bytes().decode() == on_stdout


def test_export_to_a_missing_folder_fails_and_leaves_nothing(
    cli_store: Store, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    stored(cli_store)
    target = tmp_path / "nowhere" / "out.json"
    result = run(capsys, "export", "--output", str(target))
    assert (result.code, result.out) == (2, "")
    assert result.err.startswith(f"mailmentor: error: cannot write {target}: ")
    assert not target.parent.exists()


def test_export_of_an_empty_store(cli_store: Store, capsys: pytest.CaptureFixture[str]) -> None:
    assert json.loads(run(capsys, "export").out) == {"loops": [], "gifts": []}
    assert run(capsys, "export", "--format", "csv").out.splitlines() == [",".join(CSV_COLUMNS)]


@pytest.mark.parametrize(
    ("cell", "written"),
    [
        ('=HYPERLINK("http://x")', '\'=HYPERLINK("http://x")'),
        ("+1 555", "'+1 555"),
        ("-2", "'-2"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("Pricing page?", "Pricing page?"),
    ],
)
def test_csv_cells_a_spreadsheet_would_run_are_written_as_text(cell: str, written: str) -> None:
    assert spreadsheet_safe(cell) == written
