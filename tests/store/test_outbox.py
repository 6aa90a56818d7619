"""The outbox of other mail and the sending marks, against the real Redis."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from mailmentor.store import Store
from mailmentor.store.changes import Changeset, Committed, Job

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def test_a_job_is_kept_until_done_and_claimed_like_a_due_loop(store: Store) -> None:
    job = Job(
        key="reply:m1", payload='{"kind": "reply"}', due=T0 + timedelta(seconds=60), owner="me"
    )
    assert store.loops.commit(Changeset(jobs=(job,))) == Committed()
    assert store.outbox.job("reply:m1") == '{"kind": "reply"}'
    assert [c.owner for c in store.outbox.claims()] == ["me"]
    assert store.outbox.claim(T0, timedelta(minutes=10), "other", 10) == [], "its sender's grace"
    assert store.outbox.claim(T0 + timedelta(seconds=60), timedelta(minutes=10), "other", 10) == [
        "reply:m1"
    ]
    assert store.loops.commit(Changeset(jobs_done=("reply:m1",))) == Committed()
    assert store.outbox.job("reply:m1") is None
    assert store.outbox.pending() == [] and store.outbox.claims() == []


def test_a_dead_senders_job_is_due_at_once(store: Store) -> None:
    job = Job(key="digest:w1", payload="{}", due=T0 + timedelta(seconds=60), owner="dead")
    store.loops.commit(Changeset(jobs=(job,)))
    assert store.outbox.recover(store.outbox.claims(), T0) == 1
    assert store.outbox.claim(T0, timedelta(minutes=10), "me", 10) == ["digest:w1"]


def test_a_sending_mark_has_one_holder(store: Store) -> None:
    assert store.outbox.begin_send("k", "a", timedelta(seconds=30)) == ""
    assert store.outbox.begin_send("k", "a", timedelta(seconds=30)) == "", "its holder renews it"
    assert store.outbox.begin_send("k", "b", timedelta(seconds=30)) == "a"
    assert store.outbox.begin_send("k", "b", timedelta(seconds=30), take_from="a") == ""
    assert store.outbox.sender_of("k") == "b"
    store.outbox.abort_send("k", "a")
    assert store.outbox.sender_of("k") == "b", "only its holder frees a mark"
    store.outbox.abort_send("k", "b")
    assert store.outbox.sender_of("k") is None


def test_a_sending_mark_expires(store: Store) -> None:
    import time

    store.outbox.begin_send("k", "a", timedelta(milliseconds=100))
    time.sleep(0.2)
    assert store.outbox.begin_send("k", "b", timedelta(seconds=30)) == ""


def test_the_reads_after_a_mark_see_it_in_the_same_round_trip(store: Store) -> None:
    """The sender asks "still to send?" in the round trip that takes the mark: the reads run
    after the script, so they see the mark (and whatever was there before it)."""
    mark = store.ns.key("sending", "k")

    def read(pipe: object) -> None:
        pipe.get(mark)  # type: ignore[attr-defined]
        store.outbox.queue_job_read(pipe, "k")

    holder, answers = store.outbox.begin_send_then("k", "a", timedelta(seconds=30), read)
    assert holder == "" and answers == [b"a", None]
    holder, answers = store.outbox.begin_send_then("k", "b", timedelta(seconds=30), read)
    assert holder == "a" and answers == [b"a", None], "not taken: the mark is still a's"


def test_a_redis_that_lost_its_scripts_is_given_them_again(store: Store) -> None:
    """After a Redis restart (or SCRIPT FLUSH) the pipelined script is loaded and run once;
    the reads are read again, after it."""
    store.client.script_flush()
    mark = store.ns.key("sending", "k")
    holder, answers = store.outbox.begin_send_then(
        "k", "a", timedelta(seconds=30), lambda pipe: pipe.get(mark)
    )
    assert holder == "" and answers == [b"a"]
    store.client.script_flush()
    assert store.due.hold("no-such-loop", "w", T0, timedelta(minutes=1)) is False
