"""Putting loops into the real store in a given state, and reading them back whole, for tests."""

from __future__ import annotations

from collections.abc import Callable

from mailmentor.intake import normalize_subject
from mailmentor.model import Event, Loop
from mailmentor.people import subject_key, with_gift, with_loop
from mailmentor.store import Store
from mailmentor.store.changes import Changeset, Committed, LoopChange, PersonChange


def put_loop(store: Store, loop: Loop, index: tuple[str, ...] = ()) -> Loop:
    """Write ``loop`` exactly as given (its next action included), over any stored version;
    its events are appended to the history, its Message-IDs indexed."""
    before = store.loops.get(loop.id)
    person = store.loops.person(loop.mentor.address)
    after_person = with_loop(person, before, loop, subject_key(normalize_subject(loop.subject)))
    change = Changeset(
        loops=(LoopChange(before, loop, index=(*loop.message_ids, *index)),),
        people=(PersonChange(person, after_person),),
    )
    assert isinstance(store.loops.commit(change), Committed)
    return get_loop(store, loop.id)


def put_gift(store: Store, address: str, gift: Event) -> None:
    """Record value given to ``address`` (as mentor+gave@ does)."""
    person = store.loops.person(address.lower())
    after = with_gift(person, address.lower(), gift)
    assert after is not None, "that gift is recorded already"
    change = Changeset(people=(PersonChange(person, after),))
    assert isinstance(store.loops.commit(change), Committed)


def get_loop(store: Store, loop_id: str) -> Loop:
    """The stored loop with its texts and its whole history."""
    loop = store.loops.get(loop_id, history=True)
    assert loop is not None, f"no loop {loop_id} in the store"
    return loop


def change_loop(store: Store, loop_id: str, change: Callable[[Loop], Loop]) -> Loop:
    """Apply a pure change to the stored loop (no re-planning), as one atomic write."""
    return put_loop(store, change(get_loop(store, loop_id).model_copy(update={"events": []})))


def all_loops(store: Store) -> list[Loop]:
    """Every loop in ``store``, open or ended, with its history, oldest first."""
    ids = [lp.id for lp in (*store.loops.open_loops(), *store.loops.ended_loops())]
    loops = store.loops.get_many(ids, history=True).values()
    return sorted(loops, key=lambda lp: (lp.created_at, lp.id))
