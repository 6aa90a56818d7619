"""The digest's HTML as a mail client shows it: rendered in headless Chromium (Debian's
`chromium`, which .ci/run installs), its visible text checked, nothing wider than 600 px, and
a screenshot kept in build/test-artifacts/. Also its size and that it loads nothing from
outside. A fully loaded digest with hostile names and subjects is the case that matters."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from mailmentor.digest import MAX_PEOPLE, MAX_PER_SECTION, Digest, build_digest
from mailmentor.model import Event, EventType, Kind, Loop, Person, Stage
from mailmentor.reminders import build_digest_mail, digest_html
from mailmentor.stages import replay
from tests.reminders._support import make_ctx

NOW = datetime(2026, 1, 12, 7, 1, tzinfo=UTC)
SLOT = datetime(2026, 1, 12, 7, 0, tzinfo=UTC)
ARTIFACTS = Path(os.environ.get("MAILMENTOR_TEST_ARTIFACTS", "build/test-artifacts"))
WIDTH = 600
#: Measured once the page has loaded: the document's width, the widest element's right edge,
#: and the visible text (what a reader sees, not the markup).
PROBE = """<script>
addEventListener("load", () => {
  let right = 0, widest = "";
  for (const el of document.body.querySelectorAll("*")) {
    const edge = el.getBoundingClientRect().right;
    if (edge > right) { right = edge; widest = el.tagName + ": " + el.textContent.slice(0, 60); }
  }
  const out = document.createElement("pre");
  out.id = "mm-probe";
  out.textContent = JSON.stringify({
    scrollWidth: document.documentElement.scrollWidth, right, widest,
    text: document.body.innerText,
  });
  document.documentElement.appendChild(out);
});
</script>"""

EVIL_NAME = "<script>alert(1)</script> Ｍａｒｉａ-Elisabetta Wolfeschlegelsteinhausenbergerdorff"
LONG_WORD = "Supercalifragilistic" * 10  # 200 characters, no break


def loop(n: int, stage: Stage, kind: Kind = Kind.ADVICE) -> Loop:
    name = EVIL_NAME if n % 7 == 0 else f"Person {n} مرحبا"
    subject = f"{LONG_WORD} {n}" if n % 5 == 0 else f"<img src=x onerror=alert({n})> pricing {n}"
    fresh = Loop(
        id=f"loop{n:03d}",
        kind=kind,
        mentor=Person(address=f"{'x' * 60}{n}@very-long-domain-name.example.org", name=name),
        subject=subject,
        stage=stage,
        created_at=NOW - timedelta(days=n + 3),
        stage_entered_at=NOW - timedelta(days=n),
        message_ids=[f"m{n}@x"],
    )
    at = NOW - timedelta(days=n)
    return replay(fresh, [Event(at=at, type=EventType.ADVICE, source="message <a@b>", stage=stage)])


def full_digest() -> Digest:
    """Every section full (and more), as many people as are listed."""
    loops = [loop(n, Stage.ADVISED) for n in range(MAX_PER_SECTION + 3)]
    loops += [loop(100 + n, Stage.ASKED) for n in range(MAX_PER_SECTION + 3)]
    closed = [loop(200 + n, Stage.CLOSED) for n in range(MAX_PER_SECTION)]
    digest = build_digest(loops, [], NOW, closed=closed)
    assert len(digest.relationships) == MAX_PEOPLE
    return digest


def html_of(digest: Digest) -> str:
    message = build_digest_mail(digest, SLOT, make_ctx(NOW))
    part = message.get_body(("html",))
    assert part is not None
    return str(part.get_content())


def test_the_html_is_small_self_contained_and_escaped() -> None:
    html = html_of(full_digest())
    assert len(html.encode("utf-8")) < 100_000, len(html.encode("utf-8"))
    assert not re.search(
        r"""<[^>]*\s(?:src|href|background)\s*=|<link|url\(|@import""", html, re.I
    ), "no resources"
    assert "<script" not in html and "<img" not in html
    assert "<style" not in html, "inline CSS only: mail clients drop <style>"
    assert "&lt;img src=x onerror=alert(27)&gt; pricing 27" in html


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        pytest.skip("headless Chromium not installed (apt-get install chromium; .ci/run does)")
    return found


def render(page: Path, *args: str) -> str:
    result = subprocess.run(
        [
            chromium(),
            "--headless",
            "--no-sandbox",  # CI runs as root
            "--disable-gpu",
            "--hide-scrollbars",
            f"--window-size={WIDTH},4000",
            *args,
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return result.stdout


def test_the_digest_reads_well_in_a_browser_and_nothing_is_wider_than_600_px(
    tmp_path: Path,
) -> None:
    chromium()
    digest = full_digest()
    html = digest_html(digest, make_ctx(NOW))
    page = tmp_path / "digest.html"
    page.write_text(html.replace("</body>", PROBE + "</body>"), encoding="utf-8")
    dom = render(page, "--dump-dom")
    probe = re.search(r'<pre id="mm-probe">(.*?)</pre>', dom, re.S)
    assert probe, dom[-2000:]
    found = json.loads(
        probe.group(1).replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
    )

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / "digest.png"
    plain = tmp_path / "plain.html"
    plain.write_text(html, encoding="utf-8")
    render(plain, f"--screenshot={shot.resolve()}")
    assert shot.stat().st_size > 10_000

    assert found["scrollWidth"] <= WIDTH, found
    assert found["right"] <= WIDTH, f"wider than {WIDTH}px: {found['widest']}"
    text = found["text"]
    assert text.startswith(f"Your week: {digest.to_do} to do")
    assert "Your move" in text and "Waiting on" in text and "Closed this week" in text
    assert re.search(r"^1\.\s+act on Person's advice: <img src=x onerror=alert\(27\)>", text, re.M)
    assert "<script>alert(1)</script>" in text, "a hostile name is shown as text, not run"
    assert "and 3 more" in text
    assert "What do you want to learn next?" in text
    assert "{{" not in text and "{%" not in text
