"""A message touches only its candidate loops: the Redis commands intake sends do not grow with
the loops that are not involved (found in the issue: every forward read every loop)."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import redis

from mailmentor.mailbox_mode import Origin
from mailmentor.parsing.message import parse_message
from mailmentor.service.outcomes import Advised, Handled, Joined
from mailmentor.store import Store
from tests import mail_factory as mf
from tests.service._support import T0, advised_loop, shipped
from tests.service_factory import services_on

#: Commands that read a whole structure (every loop, every key).
FULL_READS = {"hgetall", "hvals", "hkeys", "scan", "keys", "smembers", "sscan", "hscan"}


def commands(client: redis.Redis) -> Counter[str]:
    stats = client.info("commandstats")
    return Counter({name.removeprefix("cmdstat_"): int(v["calls"]) for name, v in stats.items()})


def cost_of(store: Store, raw: bytes) -> tuple[object, Counter[str]]:
    services = services_on(store, mf.USER, mf.SERVICE, rules=shipped())
    store.client.config_resetstat()
    outcome = services.intake.handle(parse_message(raw), Origin.SERVICE)
    used = commands(store.client)
    for own in ("config", "config|resetstat", "info"):
        used.pop(own, None)
    return outcome, used


def with_others(store: Store, count: int) -> None:
    services = services_on(store, mf.USER, mf.SERVICE, rules=shipped())
    for n in range(count):
        advised_loop(services, f"other{n:05}", T0 - timedelta(days=n % 30))
    services.intake.handle(parse_message(mf.ask()), Origin.SERVICE)


def test_a_forward_costs_the_same_among_5_or_600_other_loops(
    store: Store, redis_client: redis.Redis
) -> None:
    with_others(store, 5)
    small, few = cost_of(store, mf.gmail_forward())
    redis_client.flushall()
    with_others(store, 600)
    large, many = cost_of(store, mf.gmail_forward())
    assert isinstance(small, Handled) and isinstance(small.effects[0], Advised)
    assert isinstance(large, Handled) and isinstance(large.effects[0], Advised)
    assert many == few, (few, many)
    # Reads, the one commit, and what the commit does inside Redis: a handful, whatever the size.
    assert sum(many.values()) <= 25, many
    assert not FULL_READS & set(many), many


def test_a_bccd_reply_costs_the_same_among_5_or_600_other_loops(
    store: Store, redis_client: redis.Redis
) -> None:
    with_others(store, 5)
    _, few = cost_of(store, mf.follow_up("<ask-1@client.example>"))
    redis_client.flushall()
    with_others(store, 600)
    outcome, many = cost_of(store, mf.follow_up("<ask-1@client.example>"))
    assert isinstance(outcome, Handled) and isinstance(outcome.effects[0], Joined)
    assert many == few, (few, many)
    assert not FULL_READS & set(many), many


def test_handled_mail_leaves_no_key_per_message(store: Store) -> None:
    """Found in the issue: a `seen` mark per message, kept forever. Now a message's applied mark
    is an entry in a bucketed index, and no key is named after a message."""
    services = services_on(store, mf.USER, mf.SERVICE, rules=shipped())
    for n in range(40):
        ask = mf.ask(f"<many-{n}@client.example>", subject=f"Question {n}")
        services.intake.handle(parse_message(ask), Origin.SERVICE)
    names = [k.decode() for k in store.client.scan_iter("*")]
    assert not [k for k in names if "client.example" in k or ":seen" in k], names
    families = {k.split(":")[3] for k in names}
    assert families <= {"meta", "rec", "txt", "hist", "mid", "ppl", "due", "used"}, families
