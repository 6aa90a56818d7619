"""The Redis store against a real embedded redis-server (fixtures: tests/servers/redis_server)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from mailmentor.errors import LoopNotFound, StoreError
from mailmentor.model import Loop, Person, Stage
from mailmentor.store import Store

# Loaded by tests/conftest.py too; declaring it here keeps this file runnable on its own.
pytest_plugins = ["tests.servers.redis_server"]

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def make_loop(loop_id: str = "l1", at: datetime = T0, **extra: object) -> Loop:
    return Loop.model_validate(
        {
            "id": loop_id,
            "mentor": Person(address="alan@example.com", name="Alan Kay"),
            "subject": "Pricing",
            "created_at": at,
            "stage_entered_at": at,
            **extra,
        }
    )


def run_threads(n: int, target: Callable[[int], None]) -> None:
    """Start n threads together (barrier) and re-raise the first failure."""
    barrier = threading.Barrier(n)
    errors: list[BaseException] = []

    def body(i: int) -> None:
        try:
            barrier.wait()
            target(i)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=body, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]


@pytest.fixture
def url(redis_client: redis.Redis) -> str:
    """Threads need their own clients; this gives the (flushed) server's URL."""
    kwargs = redis_client.connection_pool.connection_kwargs
    return f"unix://{kwargs['path']}"


# -- loops -----------------------------------------------------------------------------------


def test_add_get_find_roundtrip(store: Store) -> None:
    loop = make_loop(message_ids=["root@x"], advice_excerpt="Charge more. Ünïcode ✓")
    assert store.add_loop(loop) is True
    assert store.get_loop("l1") == loop
    assert store.find_loop("l1") == loop
    assert store.find_loop("nope") is None
    with pytest.raises(LoopNotFound):
        store.get_loop("nope")


def test_add_loop_refuses_existing_id_without_change(store: Store) -> None:
    store.add_loop(make_loop(subject="first"))
    assert store.add_loop(make_loop(subject="second", message_ids=["other@x"])) is False
    assert store.get_loop("l1").subject == "first"
    assert store.loops_for_message_ids(["other@x"]) == []


def test_save_loop_overwrites(store: Store) -> None:
    store.save_loop(make_loop(subject="a"))
    store.save_loop(make_loop(subject="b"))
    assert store.get_loop("l1").subject == "b"
    assert [lp.id for lp in store.list_loops()] == ["l1"]


def test_update_loop_applies_change(store: Store) -> None:
    store.add_loop(make_loop())
    new = store.update_loop("l1", lambda lp: lp.model_copy(update={"stage": Stage.ADVISED}))
    assert new.stage is Stage.ADVISED
    assert store.get_loop("l1").stage is Stage.ADVISED


def test_update_loop_missing_raises(store: Store) -> None:
    with pytest.raises(LoopNotFound):
        store.update_loop("ghost", lambda lp: lp)


def test_update_loop_may_not_change_id(store: Store) -> None:
    store.add_loop(make_loop())
    with pytest.raises(StoreError, match="id"):
        store.update_loop("l1", lambda lp: lp.model_copy(update={"id": "l2"}))
    assert store.find_loop("l2") is None


def test_update_loop_under_contention_loses_no_increment(store: Store, url: str) -> None:
    store.add_loop(make_loop())

    def bump(_: int) -> None:
        client = redis.Redis.from_url(url)
        try:
            mine = Store(client)
            for _ in range(50):
                mine.update_loop("l1", lambda lp: lp.model_copy(update={"nudges": lp.nudges + 1}))
        finally:
            client.close()

    run_threads(2, bump)
    assert store.get_loop("l1").nudges == 100


def test_list_loops_oldest_first(store: Store) -> None:
    store.add_loop(make_loop("b", T0 + timedelta(days=2)))
    store.add_loop(make_loop("a", T0 + timedelta(days=1)))
    store.add_loop(make_loop("c", T0))
    assert [lp.id for lp in store.list_loops()] == ["c", "a", "b"]


def test_list_loops_skips_unreadable_record(store: Store, redis_client: redis.Redis) -> None:
    store.add_loop(make_loop("good"))
    store.add_loop(make_loop("bad", T0 + timedelta(hours=1)))
    redis_client.set("mm:loop:bad", b"{not json")
    assert [lp.id for lp in store.list_loops()] == ["good"]
    with pytest.raises(StoreError, match="mm:loop:bad"):
        store.get_loop("bad")


def test_delete_loop_removes_index_and_schedule(store: Store, redis_client: redis.Redis) -> None:
    store.add_loop(make_loop("l1", message_ids=["root@x"]))
    store.add_loop(make_loop("l2", T0 + timedelta(1), message_ids=["root@x"]))
    store.index_message_ids("l1", ["reply@x"])
    store.schedule("l1", T0)
    store.delete_loop("l1")
    assert store.find_loop("l1") is None
    assert store.loops_for_message_ids(["root@x", "reply@x"]) == ["l2"]
    assert store.due_at("l1") is None
    assert [lp.id for lp in store.list_loops()] == ["l2"]
    assert not redis_client.exists("mm:msg:reply@x", "mm:loopmsgs:l1")
    store.delete_loop("l1")  # idempotent


def test_prefix_isolates_deployments(redis_client: redis.Redis) -> None:
    a, b = Store(redis_client, prefix="a"), Store(redis_client, prefix="b")
    a.add_loop(make_loop())
    assert b.find_loop("l1") is None
    assert b.list_loops() == []
    assert redis_client.keys("a:*")
    assert len(redis_client.keys("a:*")) == len(redis_client.keys("*"))


# -- thread index ----------------------------------------------------------------------------


def test_message_index_many_loops_per_message(store: Store) -> None:
    # One thread sent to two mentors makes two loops sharing the root Message-ID.
    store.add_loop(make_loop("alan", T0 + timedelta(minutes=1), message_ids=["root@x"]))
    store.add_loop(make_loop("grace", T0, message_ids=["root@x"]))
    store.index_message_ids("alan", ["<reply@x>", " reply2@x "])
    assert store.loops_for_message_ids(["root@x"]) == ["grace", "alan"]
    assert store.loops_for_message_ids(["reply2@x", "<root@x>", "reply@x"]) == ["grace", "alan"]
    assert store.loops_for_message_ids(["unknown@x", ""]) == []
    assert store.loops_for_message_ids([]) == []


def test_update_loop_indexes_new_message_ids(store: Store) -> None:
    store.add_loop(make_loop(message_ids=["root@x"]))
    store.update_loop("l1", lambda lp: lp.model_copy(update={"message_ids": ["root@x", "r2@x"]}))
    assert store.loops_for_message_ids(["r2@x"]) == ["l1"]


# -- dedupe ----------------------------------------------------------------------------------


def test_mark_processed_only_first_time(store: Store) -> None:
    assert store.is_processed("m1@x") is False
    assert store.mark_processed("<m1@x>") is True
    assert store.mark_processed("m1@x") is False
    assert store.is_processed("m1@x") is True
    assert store.is_processed("m2@x") is False
    # No Message-ID: cannot be recognised again, so always new rather than dropped.
    assert store.mark_processed(" <> ") is True
    assert store.mark_processed("") is True
    assert store.is_processed("") is False


# -- checkpoints -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("writes", "expected"),
    [
        ([], None),
        ([(7, 10)], (7, 10)),
        ([(7, 10), (7, 12)], (7, 12)),
        ([(7, 12), (7, 10)], (7, 12)),  # never backwards within one UIDVALIDITY
        ([(7, 12), (7, 12)], (7, 12)),
        ([(7, 12), (8, 3)], (8, 3)),  # new UIDVALIDITY: old UIDs mean nothing
        ([(7, 12), (8, 3), (7, 20)], (7, 20)),
        ([(7, 0)], (7, 0)),
    ],
)
def test_checkpoint(store: Store, writes: list[tuple[int, int]], expected: object) -> None:
    for validity, uid in writes:
        store.set_checkpoint("me@host/INBOX", validity, uid)
    assert store.get_checkpoint("me@host/INBOX") == expected
    assert store.get_checkpoint("me@host/Other") is None


# -- leases ----------------------------------------------------------------------------------


def test_lease_exclusive_renewable_releasable(store: Store) -> None:
    ttl = timedelta(seconds=30)
    assert store.acquire_lease("INBOX", "w1", ttl) is True
    assert store.acquire_lease("INBOX", "w2", ttl) is False
    assert store.acquire_lease("INBOX", "w1", ttl) is True  # renewal
    store.release_lease("INBOX", "w2")  # not ours: no effect
    assert store.acquire_lease("INBOX", "w2", ttl) is False
    store.release_lease("INBOX", "w1")
    assert store.acquire_lease("INBOX", "w2", ttl) is True


def test_lease_expires(store: Store) -> None:
    assert store.acquire_lease("INBOX", "w1", timedelta(milliseconds=200)) is True
    assert store.acquire_lease("INBOX", "w2", timedelta(milliseconds=200)) is False
    time.sleep(0.3)
    assert store.acquire_lease("INBOX", "w2", timedelta(seconds=5)) is True
    assert store.acquire_lease("INBOX", "w1", timedelta(seconds=5)) is False


def test_lease_renewal_extends_ttl(store: Store, redis_client: redis.Redis) -> None:
    store.acquire_lease("INBOX", "w1", timedelta(milliseconds=200))
    store.acquire_lease("INBOX", "w1", timedelta(seconds=60))
    assert redis_client.pttl("mm:lease:INBOX") > 10_000


def test_lease_one_winner_among_racers(store: Store, url: str) -> None:
    winners: list[int] = []

    def race(i: int) -> None:
        client = redis.Redis.from_url(url)
        try:
            if Store(client).acquire_lease("INBOX", f"w{i}", timedelta(seconds=30)):
                winners.append(i)
        finally:
            client.close()

    run_threads(8, race)
    assert len(winners) == 1


# -- due reminders ---------------------------------------------------------------------------


def test_schedule_due_at_unschedule(store: Store) -> None:
    when = datetime(2026, 3, 1, 12, 30, 15, 123456, tzinfo=UTC)
    assert store.due_at("l1") is None
    store.schedule("l1", when)
    assert store.due_at("l1") == when  # microseconds survive the float score
    store.schedule("l1", when + timedelta(days=1))  # overwrites
    assert store.due_at("l1") == when + timedelta(days=1)
    store.unschedule("l1")
    assert store.due_at("l1") is None
    store.unschedule("l1")


def test_schedule_rejects_naive_datetime(store: Store) -> None:
    with pytest.raises(ValueError, match="naive"):
        store.schedule("l1", datetime(2026, 1, 1))


def test_schedule_accepts_other_timezones(store: Store) -> None:
    from zoneinfo import ZoneInfo

    local = datetime(2026, 1, 5, 10, 0, tzinfo=ZoneInfo("Europe/Paris"))
    store.schedule("l1", local)
    assert store.due_at("l1") == T0
    assert store.due_at("l1").tzinfo is UTC  # type: ignore[union-attr]


def test_next_due(store: Store) -> None:
    assert store.next_due() is None
    store.schedule("late", T0 + timedelta(days=3))
    store.schedule("early", T0 + timedelta(hours=1))
    assert store.next_due() == T0 + timedelta(hours=1)


def test_claim_due_takes_due_in_order_and_leases(store: Store) -> None:
    for i in range(5):
        store.schedule(f"l{i}", T0 + timedelta(minutes=i))
    store.schedule("future", T0 + timedelta(days=1))
    lease = timedelta(minutes=5)
    now = T0 + timedelta(minutes=3)
    assert store.claim_due(now, lease, limit=3) == ["l0", "l1", "l2"]
    assert store.claim_due(now, lease) == ["l3"]
    assert store.claim_due(now, lease) == []
    assert store.due_at("l0") == now + lease
    assert store.claim_due(now, lease, limit=0) == []


def test_claimed_item_comes_back_after_lease(store: Store) -> None:
    store.schedule("l1", T0)
    lease = timedelta(minutes=5)
    assert store.claim_due(T0, lease) == ["l1"]
    assert store.claim_due(T0 + timedelta(minutes=4), lease) == []
    assert store.claim_due(T0 + lease, lease) == ["l1"]  # the first claimer crashed
    store.unschedule("l1")  # the normal path: done, or rescheduled
    assert store.claim_due(T0 + timedelta(days=1), lease) == []


def test_claim_due_concurrent_claims_are_disjoint(
    store: Store, redis_client: redis.Redis, url: str
) -> None:
    with redis_client.pipeline() as pipe:  # bulk setup: 2,000 single ZADDs would be slow
        for i in range(2000):
            pipe.zadd("mm:due", {f"l{i}": T0.timestamp() - i})
        pipe.execute()
    claimed: dict[int, list[str]] = {0: [], 1: []}

    def claim(i: int) -> None:
        client = redis.Redis.from_url(url)
        try:
            mine = Store(client)
            while batch := mine.claim_due(T0, timedelta(minutes=5), limit=7):
                claimed[i].extend(batch)
        finally:
            client.close()

    run_threads(2, claim)
    assert not set(claimed[0]) & set(claimed[1])
    assert len(claimed[0]) + len(claimed[1]) == 2000


# -- idempotent sends ------------------------------------------------------------------------


def test_send_happy_path(store: Store, redis_client: redis.Redis) -> None:
    assert store.was_sent("l1:remind:1") is False
    assert store.begin_send("l1:remind:1", timedelta(minutes=1)) is True
    assert store.begin_send("l1:remind:1", timedelta(minutes=1)) is False  # in flight
    assert store.was_sent("l1:remind:1") is False
    store.finish_send("l1:remind:1")
    assert store.was_sent("l1:remind:1") is True
    assert store.begin_send("l1:remind:1", timedelta(minutes=1)) is False  # never twice
    assert redis_client.ttl("mm:sent:l1:remind:1") > 399 * 86400


def test_send_abort_allows_retry(store: Store) -> None:
    assert store.begin_send("k", timedelta(minutes=1)) is True
    store.abort_send("k")
    assert store.was_sent("k") is False
    assert store.begin_send("k", timedelta(minutes=1)) is True


def test_send_mark_expires_after_crash(store: Store) -> None:
    assert store.begin_send("k", timedelta(milliseconds=200)) is True
    assert store.begin_send("k", timedelta(milliseconds=200)) is False
    time.sleep(0.3)
    assert store.begin_send("k", timedelta(minutes=1)) is True


def test_send_one_winner_among_racers(store: Store, url: str) -> None:
    winners: list[int] = []

    def race(i: int) -> None:
        client = redis.Redis.from_url(url)
        try:
            if Store(client).begin_send("k", timedelta(minutes=1)):
                winners.append(i)
        finally:
            client.close()

    run_threads(8, race)
    assert len(winners) == 1


# -- health and errors -----------------------------------------------------------------------


def test_heartbeat_alive_and_expiry(store: Store) -> None:
    assert store.alive("scheduler") is False
    store.heartbeat("scheduler", timedelta(milliseconds=200))
    assert store.alive("scheduler") is True
    assert store.alive("watcher") is False
    time.sleep(0.3)
    assert store.alive("scheduler") is False


def test_decoded_client_works_too(url: str) -> None:
    client = redis.Redis.from_url(url, decode_responses=True)
    try:
        s = Store(client)
        s.add_loop(make_loop(message_ids=["root@x"]))
        s.schedule("l1", T0)
        s.set_checkpoint("mb", 1, 2)
        assert s.list_loops()[0].id == "l1"
        assert s.loops_for_message_ids(["root@x"]) == ["l1"]
        assert s.claim_due(T0, timedelta(minutes=1)) == ["l1"]
        assert s.next_due() == T0 + timedelta(minutes=1)
        assert s.get_checkpoint("mb") == (1, 2)
    finally:
        client.close()


def test_connection_failure_surfaces_as_redis_connection_error() -> None:
    """Callers (the watcher) retry on redis.ConnectionError, so the store lets it through."""
    client = redis.Redis(
        unix_socket_path="/nonexistent/redis.sock", retry=Retry(NoBackoff(), retries=0)
    )
    try:
        with pytest.raises(redis.ConnectionError):
            Store(client).find_loop("l1")
    finally:
        client.close()
