"""Loops in given states on the real store, for the service's tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from mailmentor import stages
from mailmentor.app import Services
from mailmentor.model import EventType, Loop, Person, Stage
from mailmentor.rules import Rules, default_rules_dir, load_rules
from mailmentor.schedule import plan_next
from tests.store_support import put_loop

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
ALAN = Person(address="alan@example.org", name="Alan Kay")


def shipped(**changes: object) -> Rules:
    return load_rules(default_rules_dir()).model_copy(update=changes)


def advised_after(rules: Rules, after: timedelta) -> Rules:
    """``rules`` with every rule set's first reminder in ``advised`` at ``after``."""
    sets = []
    for rule_set in rules.rule_sets:
        rule = rule_set.stages.get(Stage.ADVISED)
        if rule is not None:
            stages_ = {**rule_set.stages, Stage.ADVISED: rule.model_copy(update={"after": after})}
            rule_set = rule_set.model_copy(update={"stages": stages_})
        sets.append(rule_set)
    return rules.model_copy(update={"rule_sets": tuple(sets)})


def advised_loop(services: Services, loop_id: str = "l1", at: datetime = T0) -> Loop:
    """An advised loop (its first reminder due two days after ``at``), stored and planned."""
    loop = Loop(
        id=loop_id,
        mentor=ALAN,
        subject=f"Pricing {loop_id}",
        created_at=at - timedelta(days=1),
        stage_entered_at=at - timedelta(days=1),
        message_ids=[f"{loop_id}@client.example"],
        advice_excerpt="Cut it to three plans.",
    )
    loop = stages.record(loop, EventType.CREATED, loop.created_at, f"message <{loop_id}@c>")
    loop = stages.advance(loop, Stage.ADVISED, EventType.ADVICE, at, f"message <a-{loop_id}@m>")
    planned = loop.model_copy(update={"next_action": plan_next(loop, services.writer.rules())})
    return put_loop(services.store, planned)
