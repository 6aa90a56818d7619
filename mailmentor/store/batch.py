"""A batch of checks and writes for the COMMIT script: built in Python, run as one Lua call.

Groups are the unit of atomicity: a group's writes happen only if its checks pass. In "all" mode
(a message's whole effect) one failing group stops the batch; in "each" mode (re-planning many
loops) only that group is skipped.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Arg = str | bytes | int | float

Mode = Literal["all", "each"]


@dataclass
class _Group:
    checks: list[list[Arg]] = field(default_factory=list)
    ops: list[list[Arg]] = field(default_factory=list)


class Batch:
    """Checks and writes against named keys; `args` gives COMMIT's KEYS and ARGV."""

    def __init__(self, mode: Mode = "all") -> None:
        self.mode = mode
        self._keys: dict[str, int] = {}
        self._groups: list[_Group] = []

    def __len__(self) -> int:
        return len(self._groups)

    def group(self) -> Batch:
        """Start a new group; the checks and writes that follow belong to it."""
        self._groups.append(_Group())
        return self

    def _k(self, key: str) -> int:
        if key not in self._keys:
            self._keys[key] = len(self._keys) + 1
        return self._keys[key]

    @property
    def _current(self) -> _Group:
        if not self._groups:
            self.group()
        return self._groups[-1]

    def _check(self, *item: Arg) -> Batch:
        self._current.checks.append(list(item))
        return self

    def _op(self, *item: Arg) -> Batch:
        self._current.ops.append(list(item))
        return self

    # checks
    def expect_rev(self, key: str, field_: str, rev: int) -> Batch:
        """The versioned value at key/field is at ``rev`` (0: it does not exist)."""
        return self._check("rev", self._k(key), field_, rev)

    def expect_value(self, key: str, value: str) -> Batch:
        """The string at ``key`` is exactly ``value`` (a lease we must still hold)."""
        return self._check("lease", self._k(key), value)

    def expect_below(self, key: str, value: int) -> Batch:
        """The number at ``key`` is absent or below ``value``."""
        return self._check("below", self._k(key), value)

    # writes
    def hset(self, key: str, field_: str | bytes, value: str | bytes) -> Batch:
        return self._op("hset", self._k(key), field_, value)

    def hdel(self, key: str, field_: str | bytes) -> Batch:
        return self._op("hdel", self._k(key), field_)

    def append(self, key: str, field_: str, text: str) -> Batch:
        """Append ``text`` as a new line to the value at key/field."""
        return self._op("append", self._k(key), field_, text)

    def due(self, bucket: str, top: str, member: str, score: float, name: str) -> Batch:
        return self._op("due", self._k(bucket), self._k(top), member, repr(float(score)), name)

    def undue(self, bucket: str, top: str, member: str, name: str) -> Batch:
        return self._op("undue", self._k(bucket), self._k(top), member, name)

    def index(self, key: str, field_: bytes, loop_id: str, applied: bool) -> Batch:
        return self._op("index", self._k(key), field_, loop_id, "1" if applied else "0")

    def zadd(self, key: str, score: float, member: str) -> Batch:
        return self._op("zadd", self._k(key), repr(float(score)), member)

    def zrem(self, key: str, member: str) -> Batch:
        return self._op("zrem", self._k(key), member)

    def zremrangebyscore(self, key: str, below: float) -> Batch:
        """Remove members scored below ``below``."""
        return self._op("ztrim", self._k(key), repr(float(below)))

    def delete(self, key: str) -> Batch:
        return self._op("del", self._k(key))

    def checkpoint(self, key: str, uidvalidity: int, uid: int) -> Batch:
        return self._op("ckpt", self._k(key), str(int(uidvalidity)), str(int(uid)))

    def set(self, key: str, value: str, ttl_ms: int = 0) -> Batch:
        return self._op("set", self._k(key), value, int(ttl_ms))

    def sadd(self, key: str, member: str, ttl_s: int = 0) -> Batch:
        return self._op("sadd", self._k(key), member, int(ttl_s))

    def args(self) -> tuple[list[str], list[Arg]]:
        keys = list(self._keys)
        argv: list[Arg] = [self.mode, len(self._groups)]
        for group in self._groups:
            argv += [len(group.checks), len(group.ops)]
            for item in (*group.checks, *group.ops):
                argv += item
        return keys, argv
