"""`mailmentor mentors`, `show PERSON`, `show ID` and the one JSON shape of a loop, against the
real store (the session's embedded Redis), called as ``main(argv)``."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from mailmentor.cli import main
from mailmentor.export import summary_json
from mailmentor.model import Kind, Loop, Person, Stage
from mailmentor.relationships import relationships
from mailmentor.stages import snooze
from mailmentor.store import Store
from tests.cli_support import run
from tests.loop_stories import ALAN, DAY, GRACE, LINUS, gift, story
from tests.store_support import all_loops, put_gift, put_loop

A, AD, AC, R, C, D = (
    Stage.ASKED,
    Stage.ADVISED,
    Stage.ACTED,
    Stage.REPORTED,
    Stage.CLOSED,
    Stage.DROPPED,
)
#: What the loops of these tests are told relative to: the CLI reads the real clock.
START = datetime.now(UTC).replace(microsecond=0) - 60 * DAY
ZONE = ZoneInfo("America/New_York")
ISO_IN_TEXT = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}|\+00:00")


@pytest.fixture
def cli_store(cli_store: Store, monkeypatch: pytest.MonkeyPatch) -> Store:
    """conftest's store and clean environment, wide tables, and the user in New York."""
    monkeypatch.setenv("COLUMNS", "200")  # rich's table width, the same on every terminal
    monkeypatch.setenv("MAILMENTOR_TIMEZONE", "America/New_York")
    return cli_store


def people_stories() -> list[Loop]:
    """Alan: one whole cycle and one loop acted on; Grace: an ask she never answered; Linus
    asked the user (a mentee loop) and was answered."""
    return [
        story("alan-whole", (AD, 2), (AC, 4), (R, 10), (C, 12), start=START),
        story("alan-acted", (AD, 3), (AC, 9), mentor=ALAN, start=START + 20 * DAY),
        story("grace-ask1", (D, 21), mentor=GRACE, start=START + 1 * DAY),
        story("linus-ment", (AD, 1), mentor=LINUS, kind=Kind.MENTEE, start=START + 5 * DAY),
    ]


def store_people(store: Store) -> list[Loop]:
    for loop in people_stories():
        put_loop(store, loop)
    put_gift(store, GRACE.address, gift(START + 30 * DAY, "a book"))
    return all_loops(store)


# -- mentors ---------------------------------------------------------------------------------


def test_mentors_json_gives_each_persons_numbers(
    cli_store: Store, capsys: pytest.CaptureFixture[str]
) -> None:
    stored = store_people(cli_store)
    result = run(capsys, "mentors", "--json")
    assert result.code == 0, result.err
    rows = json.loads(result.out)
    by_address = {row["address"]: row for row in rows}
    assert rows[0]["address"] == ALAN.address  # he is owed a report
    alan = by_address[ALAN.address]
    assert (alan["name"], alan["asks"], alan["advice"], alan["reports"], alan["gives"]) == (
        "Alan Kay",
        2,
        2,
        1,
        1,
    )
    assert alan["they_asked_you"] == 0
    assert alan["owes"] == [{"move": "report", "loop_ids": ["alan-acted"]}]
    assert alan["median_days_advice_to_acted"] == 4.0  # 2 and 6 days
    assert alan["median_days_acted_to_reported"] == 6.0
    assert alan["first_contact"] == START.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert alan["age_days"] in (60, 61)  # midnight may pass while the test runs
    grace = by_address[GRACE.address]
    assert (grace["asks"], grace["advice"], grace["gives"], grace["standing"]) == (
        1,
        0,
        1,
        "never_answered",
    )
    linus = by_address[LINUS.address]
    assert (linus["asks"], linus["they_asked_you"], linus["owes"]) == (
        0,
        1,
        [{"move": "check_in", "loop_ids": ["linus-ment"]}],
    )
    # The same numbers the pure module gives for what the store holds.
    now = datetime.now(UTC)
    expected = [summary_json(s) for s in relationships(stored, cli_store.loops.all_people(), now)]
    for row in (*rows, *expected):
        row.pop("age_days")
    assert rows == expected


def test_mentors_table_shows_counts_and_what_is_owed(
    cli_store: Store, capsys: pytest.CaptureFixture[str]
) -> None:
    store_people(cli_store)
    result = run(capsys, "mentors")
    assert result.code == 0, result.err
    lines = result.out.splitlines()
    alan = next(line for line in lines if "Alan Kay" in line)
    assert re.search(r"│\s+2\s+│\s+2\s+│\s+1\s+│\s+1\s+│\s+0\s+│", alan), alan
    assert "report back on 1" in alan
    assert "4" in alan and "6" in alan  # the medians
    assert "never answered" in next(line for line in lines if "Grace Hopper" in line)
    assert "check in on 1" in next(line for line in lines if "Linus" in line)
    assert "3 people" in result.out
    assert result.out.index("Alan Kay") < result.out.index("Grace Hopper")


def test_mentors_on_an_empty_store(cli_store: Store, capsys: pytest.CaptureFixture[str]) -> None:
    assert json.loads(run(capsys, "mentors", "--json").out) == []
    assert "0 people" in run(capsys, "mentors").out


# -- show PERSON -----------------------------------------------------------------------------


def test_show_person_prints_every_loop_and_event_in_time_order_in_local_time(
    cli_store: Store, capsys: pytest.CaptureFixture[str]
) -> None:
    stored = store_people(cli_store)
    result = run(capsys, "show", "Alan@Example.org")
    assert result.code == 0, result.err
    out = result.out
    assert out.startswith("Alan Kay <alan@example.org>\n")
    assert "report back on 1" in out
    assert "2 asks, 2 advice received, 1 report, 1 give" in out
    assert "times in America/New_York" in out
    assert not ISO_IN_TEXT.search(out), out
    alans = [lp for lp in stored if lp.mentor.address == ALAN.address]
    events = sorted((e for lp in alans for e in lp.events), key=lambda e: e.at)
    assert len(events) == 9
    positions = [
        out.index(e.source, out.index("timeline")) for e in events if "message" in e.source
    ]
    assert positions == sorted(positions)
    first = events[0].at.astimezone(ZONE).strftime("%a %Y-%m-%d %H:%M")
    assert first in out
    assert "grace-ask1" not in out and "linus-ment" not in out


def test_show_person_lists_gifts_and_finds_a_unique_name(
    cli_store: Store, capsys: pytest.CaptureFixture[str]
) -> None:
    store_people(cli_store)
    result = run(capsys, "show", "grace")
    assert result.code == 0, result.err
    assert result.out.startswith("Grace Hopper <grace@navy.example>\n")
    assert "never answered" in result.out
    assert "gave: a book" in result.out
    assert "gift" in result.out


def test_show_person_json_has_the_record_and_the_loops(
    cli_store: Store, capsys: pytest.CaptureFixture[str]
) -> None:
    store_people(cli_store)
    shown = json.loads(run(capsys, "show", "linus@kernel.example", "--json").out)
    assert (shown["address"], shown["they_asked_you"], shown["asks"]) == (LINUS.address, 1, 0)
    assert [lp["id"] for lp in shown["loops"]] == ["linus-ment"]
    assert [e["type"] for e in shown["loops"][0]["events"]] == ["created", "advice"]


def test_show_an_ambiguous_or_unknown_person_fails_clearly(
    cli_store: Store, capsys: pytest.CaptureFixture[str]
) -> None:
    store_people(cli_store)
    put_loop(cli_store, story("alana-ask", mentor=Person(address="alana@x.example", name="Alana")))
    ambiguous = run(capsys, "show", "alan")
    assert ambiguous.code == 1
    assert "alan@example.org" in ambiguous.err and "alana@x.example" in ambiguous.err
    unknown = run(capsys, "show", "nobody@example.com")
    assert (unknown.code, unknown.out) == (1, "")
    assert "nobody@example.com" in unknown.err


# -- show ID ---------------------------------------------------------------------------------


def test_show_id_still_shows_one_loop_and_keeps_its_layout(
    cli_store: Store, capsys: pytest.CaptureFixture[str]
) -> None:
    loop = story("layout-01", (AD, 2), start=START)
    loop = loop.model_copy(
        update={"advice_excerpt": "Cut it to three plans.\n\nThen raise the middle one.\n-- Alan"}
    )
    loop = snooze(loop, START + 9 * DAY, START + 3 * DAY, "command snooze 6d")
    put_loop(cli_store, loop)
    result = run(capsys, "show", "layout-01")
    assert result.code == 0, result.err
    lines = result.out.splitlines()
    assert lines[0].startswith("loop layout-01")
    assert all(line.startswith("  ") for line in lines[1:]), result.out
    advice = [i for i, line in enumerate(lines) if line.startswith("  advice: ")]
    assert advice, result.out
    following = lines[advice[0] + 1 : advice[0] + 3]
    assert [line.strip() for line in following] == ["Then raise the middle one.", "-- Alan"]
    assert all(line.startswith(" " * 11) for line in following)
    assert not ISO_IN_TEXT.search(result.out), result.out
    wake = (START + 9 * DAY).astimezone(ZONE).strftime("%a %Y-%m-%d %H:%M %Z")
    assert f"until {wake}" in result.out


# -- one JSON shape ----------------------------------------------------------------------------


def test_loops_json_and_show_json_agree_on_a_loop(
    cli_store: Store, capsys: pytest.CaptureFixture[str]
) -> None:
    store_people(cli_store)
    listed = json.loads(run(capsys, "loops", "--json").out)
    assert {row["id"] for row in listed} == {lp.id for lp in people_stories()}
    for row in listed:
        shown = json.loads(run(capsys, "show", row["id"], "--json").out)
        events = shown.pop("events")
        assert shown == row
        assert [e["at"] for e in events] == sorted(e["at"] for e in events)
    row = next(r for r in listed if r["id"] == "alan-acted")
    assert row["mentor"] == {"address": "alan@example.org", "name": "Alan Kay"}
    assert row["ask_excerpt"] == "What would you change first?"
    for value in (row["created_at"], row["stage_entered_at"], row["last_contact_at"]):
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z", value), value


# -- help ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("command", "words"),
    [
        ("mentors", ("relationship", "owe", "--json")),
        ("export", ("every loop", "CSV", "--output", "--format")),
        ("show", ("ID|PERSON", "timeline", "time zone")),
    ],
)
def test_each_new_command_explains_itself(
    capsys: pytest.CaptureFixture[str], command: str, words: tuple[str, ...]
) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    listing = capsys.readouterr().out
    assert re.search(rf"^\s+{command}\s+\S", listing, re.MULTILINE), listing
    with pytest.raises(SystemExit):
        main([command, "--help"])
    own = " ".join(capsys.readouterr().out.split())
    for word in words:
        assert word in own, (word, own)
