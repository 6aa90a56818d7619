"""A store written by mailmentor main at edef4c4 (layout 1) is read by this one: every loop with
its whole history, the index, the people, the checkpoints, the digest's state."""

from __future__ import annotations

import email
import json
from pathlib import Path
from typing import Any

import pytest
import redis

from mailmentor.mailbox_mode import Origin
from mailmentor.model import EventType, Loop, Stage
from mailmentor.parsing.message import parse_message
from mailmentor.service.outcomes import Duplicate
from mailmentor.store import open_store
from mailmentor.store.keys import LAYOUT
from tests import mail_factory as mf
from tests.service_factory import services_on
from tests.store_support import all_loops

FIXTURE = Path(__file__).parent / "fixtures" / "layout1_store.json"


def restore(client: redis.Redis, dump: dict[str, Any]) -> None:
    """Write the dumped keys back exactly (type, value, TTL)."""
    for key, item in dump["keys"].items():
        kind, value, ttl = item["type"], item["value"], item["ttl_ms"]
        if kind == "string":
            client.set(key, value)
        elif kind == "set":
            client.sadd(key, *value)
        elif kind == "zset":
            client.zadd(key, {member: score for member, score in value})
        elif kind == "hash":
            client.hset(key, mapping=value)
        elif kind == "list":
            client.rpush(key, *value)
        if ttl:
            client.pexpire(key, ttl)


@pytest.fixture
def layout1() -> dict[str, Any]:
    return json.loads(FIXTURE.read_text())  # type: ignore[no-any-return]


def old_loops(dump: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        key.removeprefix("mm:loop:"): json.loads(item["value"])
        for key, item in dump["keys"].items()
        if key.startswith("mm:loop:")
    }


def test_every_loop_and_its_history_survive_the_migration(
    redis_client: redis.Redis, layout1: dict[str, Any]
) -> None:
    restore(redis_client, layout1)
    store = open_store(redis_client)
    loops = {lp.id: lp for lp in all_loops(store)}
    before = old_loops(layout1)
    assert set(loops) == set(before)
    for loop_id, old in before.items():
        loop = loops[loop_id]
        assert str(loop.stage) == old["stage"]
        assert loop.mentor.address == old["mentor"]["address"]
        assert (loop.subject, loop.ask_excerpt, loop.advice_excerpt) == (
            old["subject"],
            old["ask_excerpt"],
            old["advice_excerpt"],
        )
        assert loop.message_ids == old["message_ids"]
        assert loop.nudges == old["nudges"]
        assert [(e.type, e.stage, e.source, e.detail) for e in loop.events] == [
            (EventType(e["type"]), Stage(e["stage"]), e["source"], e["detail"])
            for e in old["events"]
        ], loop_id
        assert [e.at.isoformat().replace("+00:00", "Z") for e in loop.events] == [
            e["at"] for e in old["events"]
        ]
    closed = loops["2qnddy4goy"]
    assert closed.stage is Stage.CLOSED and closed.furthest is Stage.CLOSED
    assert sorted(lp.id for lp in store.loops.ended_loops()) == ["2qnddy4goy", "qt2ngty46r"]
    snoozed = loops["x4sszxlzrc"]
    assert snoozed.snoozed_from is Stage.ASKED and snoozed.snoozed_until is not None
    assert store.due.due_at("4cied5autz") is not None
    assert store.due.due_at("2qnddy4goy") is None


def test_summaries_of_the_history_are_recomputed(
    redis_client: redis.Redis, layout1: dict[str, Any]
) -> None:
    restore(redis_client, layout1)
    store = open_store(redis_client)
    dropped = store.loops.get("qt2ngty46r", history=True)
    assert dropped is not None and dropped.resume_stage is Stage.ASKED  # reopen goes back there
    asked = store.loops.get("4cied5autz", history=True)
    assert asked is not None
    assert asked.ignored == sum(1 for e in asked.events if e.type is EventType.REMINDER_SENT)
    assert asked.last_contact_at == asked.events[0].at


def test_people_and_gifts_move_to_person_records(
    redis_client: redis.Redis, layout1: dict[str, Any]
) -> None:
    restore(redis_client, layout1)
    store = open_store(redis_client)
    alan = store.loops.person("alan@example.org")
    assert alan is not None
    assert alan.ended == ("2qnddy4goy",) and alan.open == {}
    assert (alan.counts.advice, alan.counts.reported, alan.counts.given) == (1, 1, 1)
    assert [g.source for g in alan.gifts] == ["message <gave-1@client.example>"]
    assert {p.address for p in store.loops.all_people()} == {
        "alan@example.org",
        "grace@example.net",
        "linus@example.com",
        "dana@example.org",
    }


def test_mailbox_state_moves_and_the_old_keys_go(
    redis_client: redis.Redis, layout1: dict[str, Any]
) -> None:
    restore(redis_client, layout1)
    store = open_store(redis_client)
    assert store.checkpoints.get_checkpoint("ada@127.0.0.1:143/INBOX") == (1234, 42)
    assert store.checkpoints.unhandled_marks("ada@127.0.0.1:143/Sent", 99, [3, 4, 5]) == [4]
    assert store.weekly.digest_epoch(store_now()) is not None
    leftovers = [k.decode() for k in redis_client.scan_iter("mm:*")]
    assert [k for k in leftovers if not k.startswith("mm:u:default:")] == []
    assert redis_client.hget("mm:u:default:meta", "layout") == str(LAYOUT).encode()
    again = open_store(redis_client)  # a second start changes nothing
    assert sorted(lp.id for lp in all_loops(again)) == sorted(old_loops(layout1))


def test_mail_handled_before_the_upgrade_is_not_handled_again(
    redis_client: redis.Redis, layout1: dict[str, Any]
) -> None:
    restore(redis_client, layout1)
    store = open_store(redis_client)
    services = services_on(store, mf.USER, mf.SERVICE)
    advice = next(
        e["source"] for e in old_loops(layout1)["2qnddy4goy"]["events"] if e["type"] == "advice"
    )
    forward = email.message_from_bytes(mf.rfc822_forward("<ask-1@client.example>"))
    forward.replace_header("Message-ID", advice.removeprefix("message "))
    for raw in (mf.ask(), forward.as_bytes()):
        assert services.intake.handle(parse_message(raw), Origin.SERVICE) == Duplicate()
    loops_before: list[Loop] = all_loops(store)
    assert all_loops(store) == loops_before


def store_now() -> Any:
    from datetime import UTC, datetime

    return datetime(2026, 3, 1, tzinfo=UTC)
