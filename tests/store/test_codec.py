"""The store's encodings: every loop, event and person reads back exactly as it was written."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailmentor.errors import StoreError
from mailmentor.model import ActionKind, Event, EventType, Kind, Loop, Person, PlannedAction, Stage
from mailmentor.people import Counts, PersonRecord
from mailmentor.store import codec

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)

times = st.integers(min_value=0, max_value=10 * 365 * 86400).map(
    lambda s: T0 + timedelta(seconds=s)
)
text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=120)
stages = st.sampled_from(list(Stage))
actions = st.builds(
    PlannedAction,
    kind=st.sampled_from(list(ActionKind)),
    due_at=times,
    stage=stages,
    sequence=st.integers(1, 50),
    rule=text,
)
events = st.builds(
    Event,
    at=times,
    type=st.sampled_from(list(EventType)),
    source=st.one_of(
        text,
        text.map(lambda t: f"message <{t}>"),
        text.map(lambda t: f"rule {t}"),
        st.sampled_from(["<x>", "=y", "\\z", "snooze ended"]),
    ),
    stage=stages,
    detail=st.one_of(
        text,
        st.sampled_from(
            [
                "asked by BCC",
                "advice forwarded (matched by References)",
                "literal \x7f0 token",
                "\x7f\x7fx",
                "wrote to mentor (matched by subject and mentor (no References match))",
            ]
        ),
    ),
)
loops = st.builds(
    Loop,
    id=st.text("abcdefghijklmnopqrstuvwxyz234567", min_size=10, max_size=10),
    kind=st.sampled_from(list(Kind)),
    mentor=st.builds(Person, address=text, name=text),
    subject=text,
    stage=stages,
    created_at=times,
    stage_entered_at=times,
    message_ids=st.lists(text, max_size=4),
    first_reminder_at=st.none() | times,
    ask_excerpt=text,
    advice_excerpt=st.text(max_size=700),
    nudges=st.integers(0, 20),
    last_reminder_at=st.none() | times,
    snoozed_until=st.none() | times,
    snoozed_from=st.none() | stages,
    next_action=st.none() | actions,
    ignored=st.integers(0, 20),
    woke_at=st.none() | times,
    resume_stage=stages,
    furthest=stages,
    last_contact_at=st.none() | times,
)


@settings(max_examples=300, deadline=None)
@given(loop=loops, rev=st.integers(1, 10_000))
def test_a_loop_reads_back_as_written(loop: Loop, rev: int) -> None:
    back = codec.decode_loop(loop.id, codec.encode_loop(loop, rev), codec.encode_texts(loop))
    assert back.model_copy(update={"rev": 0}) == loop
    assert back.rev == rev


@settings(max_examples=300, deadline=None)
@given(history=st.lists(events, max_size=6), base=st.integers(0, 2_000_000_000))
def test_a_history_reads_back_as_written(history: list[Event], base: int) -> None:
    assert codec.decode_history(codec.encode_events(history, base), base) == history


def test_records_stay_small_and_do_not_grow_with_the_history() -> None:
    loop = Loop(
        id="abcdefghij",
        mentor=Person(address="alan@example.org", name="Alan Kay"),
        subject="Advice on pricing page?",
        created_at=T0,
        stage_entered_at=T0,
        message_ids=["ask-1@client.example"],
    )
    small = codec.encode_loop(loop, 1)
    assert len(small) < 120, small
    busy = loop.model_copy(
        update={
            "events": [Event(at=T0, type=EventType.NOTE, source="command note", stage=Stage.ASKED)]
            * 500,
            "nudges": 3,
            "last_reminder_at": T0 + timedelta(days=3),
        }
    )
    assert len(codec.encode_loop(busy, 99)) < len(small) + 20, "the history is kept apart"


def test_texts_are_deflated() -> None:
    loop = Loop(
        id="abcdefghij",
        mentor=Person(address="alan@example.org"),
        subject="s",
        created_at=T0,
        stage_entered_at=T0,
        ask_excerpt="What would you change first on our pricing page? " * 10,
    )
    assert len(codec.encode_texts(loop)) < len(loop.ask_excerpt) / 3


def test_a_person_reads_back_as_written() -> None:
    gift = Event(
        at=T0, type=EventType.NOTE, source="message <g@x>", stage=Stage.CLOSED, detail="gave: a"
    )
    person = PersonRecord(
        address="alan@example.org",
        name="Alan",
        open={"l1": "abcd1234"},
        ended=("l2", "l3"),
        counts=Counts(2, 1, 1),
        mentee_ended=1,
        last_contact=T0,
        gifts=(gift,),
    )
    back = codec.decode_person("alan@example.org", codec.encode_person(person, 7))
    assert back == PersonRecord(**{**person.__dict__, "rev": 7})


@pytest.mark.parametrize("raw", ["", "x", "1|not json", '1|["a"]', "1|[]", 'z|["avvv"]'])
def test_an_unreadable_record_is_a_store_error_naming_the_loop(raw: str) -> None:
    with pytest.raises(StoreError, match="abc"):
        codec.decode_loop("abc", raw)


def test_the_index_entry_says_which_loops_the_message_was_applied_to() -> None:
    assert list(codec.decode_index("a+ b c+")) == [("a", True), ("b", False), ("c", True)]
    assert list(codec.decode_index(None)) == []
