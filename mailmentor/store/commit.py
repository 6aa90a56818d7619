"""Running a Batch as the COMMIT script: the one place every multi-key write goes through."""

from __future__ import annotations

from collections.abc import Callable

import redis

from mailmentor.store import lua
from mailmentor.store.batch import Batch
from mailmentor.store.changes import CommitResult, Committed, Conflict


class Committer:
    def __init__(self, client: redis.Redis) -> None:
        self._script = client.register_script(lua.COMMIT)

    def run(self, batch: Batch, describe: Callable[[int], str] | None = None) -> CommitResult:
        """Run an "all" batch: Committed, or Conflict naming (``describe``) the failed group."""
        keys, argv = batch.args()
        result = self._script(keys=keys, args=argv)
        if int(result[0]) == 1 and len(result) == 1:
            return Committed()
        group = int(result[1]) if len(result) > 1 else 0
        return Conflict(describe(group) if describe is not None else f"group {group}")

    def run_each(self, batch: Batch) -> list[int]:
        """Run an "each" batch; returns the (1-based) groups skipped because a check failed."""
        keys, argv = batch.args()
        result = self._script(keys=keys, args=argv)
        return [int(g) for g in result[1:]]
