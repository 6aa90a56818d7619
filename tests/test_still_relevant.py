"""Three reminders ignored in a row: one "still relevant?" mail, then a pause until answered."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from mailmentor import stages
from mailmentor.model import ActionKind, EventType, Kind, Loop, Person, Stage
from mailmentor.rules import Rules, RuleSet, StageRule
from mailmentor.schedule import IGNORED_LIMIT, ignored_reminders, plan_next

T0 = datetime(2026, 1, 5, 9, tzinfo=UTC)
D = timedelta(days=1)
RULES = Rules(
    rule_sets=(
        RuleSet(
            name="advice",
            kinds=(Kind.ADVICE,),
            stages={Stage.ADVISED: StageRule(after=2 * D, every=2 * D, max=6)},
        ),
    )
)


def advised() -> Loop:
    loop = Loop(
        id="l1", mentor=Person(address="alan@example.org"), subject="Pricing",
        created_at=T0, stage_entered_at=T0, stage=Stage.ADVISED,
    )  # fmt: skip
    return stages.record(loop, EventType.ADVICE, T0, "message <a@x>")


def send_due(loop: Loop) -> Loop:
    action = plan_next(loop, RULES)
    assert action is not None
    return stages.apply_due_action(loop, action, action.due_at)


def test_third_ignored_reminder_is_followed_by_still_relevant_then_a_pause() -> None:
    loop = advised()
    for _ in range(IGNORED_LIMIT):
        assert plan_next(loop, RULES).kind is ActionKind.REMIND  # type: ignore[union-attr]
        loop = send_due(loop)
    assert ignored_reminders(loop) == IGNORED_LIMIT
    action = plan_next(loop, RULES)
    assert action is not None and action.kind is ActionKind.STILL_RELEVANT
    paused = stages.apply_due_action(loop, action, action.due_at)
    assert (paused.stage, paused.snoozed_until, paused.snoozed_from) == (
        Stage.SNOOZED,
        None,
        Stage.ADVISED,
    )
    assert plan_next(paused, RULES) is None, "paused until the user answers"
    resumed = stages.reopen(paused, action.due_at + D, "message <r@x>")
    assert resumed.stage is Stage.ADVISED
    assert ignored_reminders(resumed) == 0
    assert plan_next(resumed, RULES).kind is ActionKind.REMIND  # type: ignore[union-attr]


def test_any_sign_of_the_user_resets_the_count() -> None:
    loop = send_due(send_due(advised()))
    assert ignored_reminders(loop) == 2
    noted = stages.record(loop, EventType.NOTE, T0 + 5 * D, "message <n@x>", "on it")
    assert ignored_reminders(noted) == 0
    assert plan_next(send_due(noted), RULES).kind is ActionKind.REMIND  # type: ignore[union-attr]
