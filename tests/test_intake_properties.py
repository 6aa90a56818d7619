"""Property test: generated and mutated mail through intake and the service, on the real store.

Whatever arrives, handling it neither raises nor hands a second copy any new effect.
"""

from __future__ import annotations

import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailmentor.intake import classify
from mailmentor.parsing.message import parse_message
from mailmentor.service.outcomes import Duplicate, Ignored
from mailmentor.store import Store
from tests.fixtures.forwards import CLIENTS
from tests.mail_factory import USER, ask, auto_reply, follow_up, gmail_forward, rfc822_forward
from tests.parsing.test_robustness import _NASTY, Mutation, _mutate, _mutation
from tests.service_factory import handle, services_on
from tests.store_support import all_loops

BASES = [
    ask(),
    follow_up("<ask-1@client.example>"),
    gmail_forward(),
    rfc822_forward("<ask-1@client.example>"),
    auto_reply("mentor+r-abc-def@example.com"),
    *(bytes(build("Grace", "grace@example.org", "Pricing")) for build in CLIENTS.values()),
]


@settings(
    max_examples=150,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    base=st.sampled_from(BASES),
    mutations=st.lists(_mutation, max_size=6),
    nasty=st.lists(st.tuples(st.integers(0, 1 << 14), st.sampled_from(_NASTY)), max_size=3),
)
def test_mutated_mail_never_breaks_intake(
    store: Store,
    redis_client: redis.Redis,
    base: bytes,
    mutations: list[Mutation],
    nasty: list[tuple[int, bytes]],
) -> None:
    raw = _mutate(base, mutations)
    for position, piece in nasty:
        at = position % (len(raw) + 1)
        raw = raw[:at] + piece + raw[at:]
    redis_client.flushdb()
    service = services_on(store, USER)
    msg = parse_message(raw)
    classify(msg, service.intake.identity)
    first = handle(service, msg)
    after = [loop.model_dump() for loop in all_loops(store)]
    again = handle(service, msg)
    assert isinstance(again, Duplicate) or isinstance(first, Ignored) or msg.message_id == ""
    assert [loop.model_dump() for loop in all_loops(store)] == after
