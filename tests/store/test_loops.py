"""Loops in the real Redis: one atomic commit per change, revisions, history apart, the
Message-ID index with its applied marks, open and ended loops apart, people."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import redis

from mailmentor import stages
from mailmentor.embedded_redis import EmbeddedRedis
from mailmentor.model import ActionKind, EventType, Loop, Person, PlannedAction, Stage
from mailmentor.people import PersonRecord, subject_key, with_loop
from mailmentor.store import Store, open_store
from mailmentor.store.changes import Changeset, Committed, Conflict, LoopChange, PersonChange

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
ALAN = Person(address="alan@example.org", name="Alan Kay")


def new_loop(loop_id: str = "l1", **extra: object) -> Loop:
    loop = Loop(
        id=loop_id,
        mentor=ALAN,
        subject="Pricing",
        created_at=T0,
        stage_entered_at=T0,
        message_ids=[f"{loop_id}-ask@client.example"],
        ask_excerpt="What would you change first?",
    )
    loop = stages.record(loop, EventType.CREATED, T0, f"message <{loop_id}-ask@client.example>")
    return loop.model_copy(update=extra) if extra else loop


def due(at: datetime) -> PlannedAction:
    return PlannedAction(kind=ActionKind.REMIND, due_at=at, stage=Stage.ASKED, rule="advice.asked")


def create(store: Store, loop: Loop) -> Loop:
    change = LoopChange(None, loop, index=tuple(loop.message_ids), applied=(loop.message_ids[0],))
    assert store.loops.commit(Changeset(loops=(change,))) == Committed()
    found = store.loops.get(loop.id)
    assert found is not None
    return found


def test_a_new_loop_reads_back_with_texts_and_history(store: Store) -> None:
    loop = new_loop(next_action=due(T0 + timedelta(days=7)))
    stored = create(store, loop)
    assert stored.rev == 1
    assert stored.ask_excerpt == loop.ask_excerpt and stored.events == []
    full = store.loops.get("l1", history=True)
    assert full is not None and full.events == loop.events
    assert store.loops.get("l1", texts=False).ask_excerpt == ""  # type: ignore[union-attr]
    assert store.due.due_at("l1") == T0 + timedelta(days=7)
    assert store.due.next_due() == T0 + timedelta(days=7)


def test_creating_an_existing_loop_conflicts_and_writes_nothing(store: Store) -> None:
    create(store, new_loop())
    again = new_loop(subject="Something else")
    result = store.loops.commit(Changeset(loops=(LoopChange(None, again),)))
    assert result == Conflict("loop l1")
    assert store.loops.get("l1").subject == "Pricing"  # type: ignore[union-attr]


def test_a_change_from_a_stale_read_conflicts(store: Store) -> None:
    first = create(store, new_loop())
    moved = stages.advance(first, Stage.ADVISED, EventType.ADVICE, T0, "message <a@m>")
    assert store.loops.commit(Changeset(loops=(LoopChange(first, moved),))) == Committed()
    stale = stages.record(first, EventType.NOTE, T0, "command note", "late")
    assert store.loops.commit(Changeset(loops=(LoopChange(first, stale),))) == Conflict("loop l1")
    stored = store.loops.get("l1", history=True)
    assert stored is not None and stored.stage is Stage.ADVISED and stored.rev == 2
    assert [e.type for e in stored.events] == [EventType.CREATED, EventType.ADVICE]


def test_the_history_is_appended_never_rewritten(store: Store) -> None:
    loop = create(store, new_loop())
    for n in range(30):
        after = stages.record(loop, EventType.NOTE, T0 + timedelta(minutes=n), "command note")
        assert store.loops.commit(Changeset(loops=(LoopChange(loop, after),))) == Committed()
        loop = store.loops.get("l1")  # type: ignore[assignment]
    history = store.loops.history("l1")
    assert len(history) == 31 and history[-1].at == T0 + timedelta(minutes=29)


def test_texts_are_kept_when_the_change_did_not_read_them(store: Store) -> None:
    create(store, new_loop())
    bare = store.loops.get("l1", texts=False)
    assert bare is not None and bare.ask_excerpt == ""
    after = bare.model_copy(update={"nudges": 1})
    change = LoopChange(bare, after, texts_loaded=False)
    assert store.loops.commit(Changeset(loops=(change,))) == Committed()
    assert store.loops.get("l1").ask_excerpt == "What would you change first?"  # type: ignore[union-attr]


def test_an_ended_loop_leaves_the_open_ones_and_its_schedule(store: Store) -> None:
    loop = create(store, new_loop(next_action=due(T0 + timedelta(days=1))))
    create(store, new_loop("l2"))
    dropped = stages.drop(loop, EventType.COMMAND, T0, "message <s@c>", "stopped by the user")
    assert store.loops.commit(Changeset(loops=(LoopChange(loop, dropped),))) == Committed()
    assert [lp.id for lp in store.loops.open_loops()] == ["l2"]
    assert [lp.id for lp in store.loops.ended_loops()] == ["l1"]
    assert sorted(store.loops.loop_ids()) == ["l1", "l2"], "open and ended, no record read"
    assert store.due.due_at("l1") is None
    ended = store.loops.get("l1")
    assert ended is not None and ended.stage is Stage.DROPPED
    reopened = stages.reopen(ended, T0, "message <r@c>")
    assert store.loops.commit(Changeset(loops=(LoopChange(ended, reopened),))) == Committed()
    assert sorted(lp.id for lp in store.loops.open_loops()) == ["l1", "l2"]
    assert list(store.loops.ended_loops()) == []


def test_the_index_finds_the_loops_of_a_thread_and_says_what_was_applied(store: Store) -> None:
    create(store, new_loop())
    loop = store.loops.get("l1")
    assert loop is not None
    joined = stages.record(loop, EventType.MESSAGE, T0, "message <re@c>")
    change = LoopChange(loop, joined, index=("<re@c>", "l1-ask@client.example"), applied=("re@c",))
    assert store.loops.commit(Changeset(loops=(change,))) == Committed()
    found = store.loops.lookup(["<l1-ask@client.example>", "re@c", "unknown@x"])
    assert found["l1-ask@client.example"].loops == ("l1",)
    assert found["l1-ask@client.example"].applied_to == ("l1",)
    assert found["re@c"].applied_to == ("l1",)
    assert "unknown@x" not in found


def test_one_message_id_in_two_loops(store: Store) -> None:
    create(store, new_loop("l1"))
    other = new_loop("l2").model_copy(update={"message_ids": ["l1-ask@client.example"]})
    change = LoopChange(None, other, index=("l1-ask@client.example",))
    assert store.loops.commit(Changeset(loops=(change,))) == Committed()
    (entry,) = store.loops.lookup(["l1-ask@client.example"]).values()
    assert entry.loops == ("l1", "l2") and entry.applied_to == ("l1",)


def test_a_change_of_several_loops_is_all_or_nothing(store: Store) -> None:
    first = create(store, new_loop("l1"))
    fresh = new_loop("l2")
    stale = first.model_copy(update={"rev": 0})  # as if read before it was created
    change = Changeset(
        loops=(LoopChange(None, fresh), LoopChange(stale, stale.model_copy(update={"nudges": 5})))
    )
    assert isinstance(store.loops.commit(change), Conflict)
    assert store.loops.get("l2") is None, "nothing of the failed change was written"


def test_people_are_versioned_like_loops(store: Store) -> None:
    loop = new_loop()
    person = with_loop(None, None, loop, subject_key("pricing"))
    change = Changeset(loops=(LoopChange(None, loop),), people=(PersonChange(None, person),))
    assert store.loops.commit(change) == Committed()
    stored = store.loops.person("ALAN@example.org")
    assert stored is not None and stored.open == {"l1": subject_key("pricing")} and stored.rev == 1
    again = Changeset(people=(PersonChange(None, PersonRecord(address=ALAN.address)),))
    assert store.loops.commit(again) == Conflict(f"person {ALAN.address}")
    assert [p.address for p in store.loops.all_people()] == [ALAN.address]


def test_concurrent_changes_of_one_loop_lose_nothing(
    store: Store, redis_server: EmbeddedRedis
) -> None:
    """Eight writers add a note each, re-reading on a conflict, as the LoopWriter does."""
    create(store, new_loop())

    def writer(n: int) -> None:
        with redis.Redis.from_url(redis_server.url) as client:
            own = open_store(client)
            while True:
                loop = own.loops.get("l1")
                assert loop is not None
                after = stages.record(loop, EventType.NOTE, T0, f"command note {n}")
                if own.loops.commit(Changeset(loops=(LoopChange(loop, after),))) == Committed():
                    return

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    history = store.loops.history("l1")
    assert sorted(e.source for e in history[1:]) == sorted(f"command note {n}" for n in range(8))
    assert store.loops.get("l1").rev == 9  # type: ignore[union-attr]


def test_forgetting_leaves_only_opaque_message_hashes(store: Store) -> None:
    loop = create(store, new_loop(next_action=due(T0)))
    store.loops.delete([loop], [])
    assert store.loops.get("l1") is None and store.loops.history("l1") == []
    assert store.due.due_at("l1") is None
    (entry,) = store.loops.lookup(["l1-ask@client.example"]).values()
    assert entry.applied_to == ("l1",), "the mail is recognised as handled, nothing more"
    names = [k.decode() for k in store.client.scan_iter("*")]
    assert not any("alan" in k.lower() for k in names)
    for key in names:
        if store.client.type(key) == b"hash":
            for value in store.client.hvals(key):
                assert b"alan" not in value.lower() and b"pricing" not in value.lower(), key
