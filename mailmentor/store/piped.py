"""A script and the reads that must see its effect, in one round trip.

Redis runs the commands of one connection in order, so reads queued after a script in a
pipeline (no MULTI needed) see what the script wrote, exactly as a separate call after it
would, one round trip sooner. The sender uses it for "hold the claim, then read the loop" and
"take the sending mark, then ask whether it is still to send".
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import redis
from redis.commands.core import Script
from redis.exceptions import NoScriptError

#: Queues reads on a pipeline.
Reads = Callable[[Any], None]


def script_then(
    client: redis.Redis, script: Script, keys: Sequence[str], args: Sequence[Any], reads: Reads
) -> tuple[Any, list[Any]]:
    """(the script's answer, the reads' answers), in one round trip; errors raise as a call of
    their own would. A Redis that lost its scripts (a restart) is given this one again."""
    for attempt in (1, 2):
        with client.pipeline(transaction=False) as pipe:
            pipe.evalsha(script.sha, len(keys), *keys, *args)
            reads(pipe)
            answers = pipe.execute(raise_on_error=False)
        first = answers[0]
        if isinstance(first, NoScriptError) and attempt == 1:
            client.script_load(script.script)  # nothing ran; the reads are simply read again
            continue
        for answer in answers:
            if isinstance(answer, Exception):
                raise answer
        return first, answers[1:]
    raise AssertionError("unreachable")
