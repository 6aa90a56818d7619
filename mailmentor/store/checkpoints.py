"""How far the watcher has read each mailbox, and which marked messages it handed over.

A checkpoint is (UIDVALIDITY, last UID) and only moves forward within one UIDVALIDITY; a new
UIDVALIDITY resets it (the old UIDs mean nothing). Writes may be fenced by the watcher's lease.
"""

from __future__ import annotations

from collections.abc import Sequence

import redis

from mailmentor.store import lua
from mailmentor.store.batch import Batch
from mailmentor.store.changes import Committed
from mailmentor.store.commit import Committer
from mailmentor.store.keys import Namespace
from mailmentor.store.leases import Fence, expect_fence


class Checkpoints:
    def __init__(self, client: redis.Redis, ns: Namespace, committer: Committer) -> None:
        self._r = client
        self._ns = ns
        self._committer = committer
        self._marks = client.register_script(lua.HANDLED_MARKS)

    def get_checkpoint(self, mailbox: str) -> tuple[int, int] | None:
        """(uidvalidity, last_uid) seen for the mailbox, or None before the first run."""
        values = self._r.hmget(self._ns.key("ckpt", mailbox), ["uidvalidity", "last_uid"])
        if values[0] is None or values[1] is None:
            return None
        return int(values[0]), int(values[1])

    def set_checkpoint(
        self, mailbox: str, uidvalidity: int, last_uid: int, fence: Fence | None = None
    ) -> bool:
        """Record progress (a late writer with an older UID is ignored); False when fenced off
        (``fence`` = (lease name, value) no longer holds)."""
        batch = expect_fence(Batch("all"), self._ns, fence)
        batch.checkpoint(self._ns.key("ckpt", mailbox), uidvalidity, last_uid)
        return isinstance(self._committer.run(batch), Committed)

    def unhandled_marks(self, mailbox: str, uidvalidity: int, uids: Sequence[int]) -> list[int]:
        """The UIDs among ``uids`` not yet handed over as marked, in the order given."""
        if not uids:
            return []
        pipe = self._r.pipeline(transaction=True)
        pipe.get(self._ns.key("marksv", mailbox))
        pipe.smismember(self._ns.key("marks", mailbox), [str(int(uid)) for uid in uids])
        validity, known = pipe.execute()
        if validity is None or validity.decode() != str(int(uidvalidity)):
            return list(uids)
        return [uid for uid, seen in zip(uids, known, strict=True) if not seen]

    def handled_marks(self, mailbox: str, uidvalidity: int, uids: Sequence[int]) -> None:
        if uids:
            self._marks(
                keys=[self._ns.key("marks", mailbox), self._ns.key("marksv", mailbox)],
                args=[str(int(uidvalidity)), *(str(int(uid)) for uid in uids)],
            )
