"""Where everything lives in Redis: one namespace per user, and small hashes in buckets.

Every key starts with ``mm:u:<user>:``, so several users on one deployment (or tests) share a
server without seeing each other. Per-loop data sits in *bucketed* hashes: the loop's id picks
one of ``BUCKETS`` hashes of each family, so a million loops make ~120 entries per hash, which
Redis keeps in its compact encoding (see `store.client.tune_encodings`). A key per loop would
cost ~100 bytes of bookkeeping each; a bucket entry costs a few.

Keys (``n`` is the namespace, ``b`` a bucket number):

  n:meta              hash   layout version, bucket count
  n:rec:b             hash   loop id -> record of an open loop (``rev|…``, codec.encode_loop)
  n:arc:b             hash   loop id -> record of a closed or dropped loop
  n:txt:b             hash   loop id -> its texts: excerpts and thread ids, compressed
  n:hist:b            hash   loop id -> its history, one encoded event per line, appended
  n:mid:b             hash   8-byte Message-ID hash -> "loopid[+] …" (+: that message was
                             applied to that loop, the idempotency mark)
  n:used:<family>     set    bucket numbers of rec, arc and ppl written so far
  n:ppl:b             hash   mentor address -> person record (open loops with subject keys,
                             ended loops, relationship counts, gifts)
  n:due:b             zset   loop id -> when its next action is due
  n:due               zset   b -> the earliest due time in n:due:b (the scheduler's view)
  n:closed            zset   loop id -> when it closed (the last 30 days: the digest)
  n:claims            hash   loop id -> "owner|lease_until" while a due loop is being sent
  n:out               zset   job key -> when to send it (replies, digests, drafts)
  n:outjob            hash   job key -> the job (JSON)
  n:outclaims         hash   job key -> "owner|lease_until"
  n:sending:<key>     string owner, with a TTL: one send in flight
  n:budget:<week>     set    "loopid action" reminders counted against that week's budget
  n:ckpt:<mailbox>    hash   uidvalidity, last_uid
  n:marks:<mailbox>   set    UIDs handed over as marked (mailbox mode); n:marksv:<mailbox>
                             holds their UIDVALIDITY
  n:lease:<name>      string "token|owner", with a TTL; n:fence:<name> counts acquisitions
  n:proc:<owner>      string a live process's heartbeat, with a TTL
  n:alive:<component> string a component finished a pass (the scheduler), with a TTL
  n:parts:<component> hash   "<host> <owner>" -> until (ms, Redis clock): the processes of
                             that component (watch, schedule, work) that run (``status``)
  n:claimlog:<nonce>  list   what one claim call claimed, kept a minute (a retried call finds it)
  n:watcher:<mailbox> hash   how each watcher is doing (state, mode, last sync, errors,
                             counters); n:watcherbeat:, n:watchersync:, n:watcherwork: its
                             heartbeats; n:watchers the mailboxes with one; n:sends the sends
                             given up or retried (all in `health`)
  n:digest:epoch      string when digests started being scheduled here
  n:digest:decided    string the latest weekly digest slot already queued
  n:digest:lines:<id> hash   line number -> loop id of one digest (a year: replies "2 done")
  n:oauth:<account>   string the account's OAuth2 tokens, encrypted (oauth.vault)
  n:oauth-broken:<account>  string why and since when the provider refused them, until the
                             next ``connect``; n:oauth-refresh:<account> a refresh's lock
"""

from __future__ import annotations

import hashlib
import zlib
from dataclasses import dataclass

#: Hashes per family. Fixed for a namespace once data exists (recorded in n:meta).
BUCKETS = 8192
#: The layout this code writes; older layouts are migrated on start-up (store.migrate).
LAYOUT = 2
DEFAULT_USER = "default"


def loop_bucket(loop_id: str, buckets: int = BUCKETS) -> int:
    return zlib.crc32(loop_id.encode()) % buckets


def message_key(message_id: str) -> bytes:
    """A Message-ID as the index keeps it: 8 bytes of its SHA-1 (opaque, fixed size)."""
    return hashlib.sha1(message_id.encode("utf-8", "surrogateescape")).digest()[:8]


def message_bucket(key: bytes, buckets: int = BUCKETS) -> int:
    return int.from_bytes(key[-3:], "big") % buckets


def person_bucket(address: str, buckets: int = BUCKETS) -> int:
    return zlib.crc32(address.encode("utf-8", "surrogateescape")) % buckets


@dataclass(frozen=True)
class Namespace:
    """The key names of one user's data."""

    user: str = DEFAULT_USER
    buckets: int = BUCKETS

    def __post_init__(self) -> None:
        if not self.user or any(c in self.user for c in ":*?[] \t\r\n"):
            raise ValueError(f"user id {self.user!r}: use letters, digits, '.', '-', '_', '@'")

    @property
    def prefix(self) -> str:
        return f"mm:u:{self.user}"

    def key(self, *parts: str | int) -> str:
        return ":".join((self.prefix, *(str(p) for p in parts)))

    # per-loop families
    def rec(self, loop_id: str) -> str:
        return self.key("rec", loop_bucket(loop_id, self.buckets))

    def arc(self, loop_id: str) -> str:
        return self.key("arc", loop_bucket(loop_id, self.buckets))

    def txt(self, loop_id: str) -> str:
        return self.key("txt", loop_bucket(loop_id, self.buckets))

    def hist(self, loop_id: str) -> str:
        return self.key("hist", loop_bucket(loop_id, self.buckets))

    def due_bucket(self, loop_id: str) -> tuple[str, str]:
        """(the bucket's key, its number as the top-level due set names it)."""
        b = loop_bucket(loop_id, self.buckets)
        return self.key("due", b), str(b)

    def mid(self, key: bytes) -> str:
        return self.key("mid", message_bucket(key, self.buckets))

    def person(self, address: str) -> str:
        return self.key("ppl", person_bucket(address, self.buckets))

    def family(self, name: str) -> list[str]:
        """Every bucket key of one family (``rec``, ``arc``, ``ppl`` …)."""
        return [self.key(name, b) for b in range(self.buckets)]

    def used(self, name: str) -> str:
        """The set of bucket numbers of family ``name`` ever written (so that reading a whole
        family visits only those)."""
        return self.key("used", name)

    def bucket_of(self, key: str) -> str:
        return key.rpartition(":")[2]
