"""Parsing throughput: mailmentor's parse_message against the stdlib's policy.default parse.

Run: .venv/bin/python bench/parse.py [SECONDS]. Both are timed in the same run on the same
messages (the shared corpora when present, else our own fixtures), alternating rounds so a
noisy machine affects both alike; the ratio is what to compare across changes.
"""

from __future__ import annotations

import email
import statistics
import sys
import time
from collections.abc import Callable
from email import policy
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mailmentor.parsing.message import parse_message  # noqa: E402


def messages() -> list[bytes]:
    corpora = ROOT.parent / "shared" / "corpora"
    paths = sorted(corpora.rglob("*.eml")) if corpora.is_dir() else []
    paths += sorted((ROOT / "tests" / "parsing" / "fixtures").glob("*.eml"))
    return [p.read_bytes() for p in paths]


def rate(fn: Callable[[bytes], object], batch: list[bytes]) -> float:
    start = time.perf_counter()
    for raw in batch:
        fn(raw)
    return len(batch) / (time.perf_counter() - start)


def stdlib(raw: bytes) -> object:
    """The baseline: what a naive intake would do (it raises on some real mail: caught here)."""
    try:
        msg = email.message_from_bytes(raw, policy=policy.default)
        body = msg.get_body(preferencelist=("plain", "html"))  # type: ignore[attr-defined]
        return body.get_content() if body is not None else None
    except (LookupError, ValueError, AttributeError, KeyError):
        return None


def main() -> int:
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 10.0
    batch = messages()
    ours: list[float] = []
    base: list[float] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        base.append(rate(stdlib, batch))
        ours.append(rate(parse_message, batch))
    b, o = statistics.median(base), statistics.median(ours)
    print(f"messages per round: {len(batch)}, rounds: {len(ours)}")
    print(f"stdlib policy.default parse + body: {b:8.0f} msgs/s (baseline)")
    print(f"mailmentor parse_message:           {o:8.0f} msgs/s  ratio {o / b:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
