"""The `mailmentor` command line, called as ``main(argv)`` with its output read through capsys.

Every test runs with no MAILMENTOR_* variable from the outside world, in its own working
directory (so no stray ``.env`` is read) and its own data directory. Commands that need a store
use the session's real Redis; the tests of the embedded Redis start and stop their own.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import socket
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import redis
import yaml

from mailmentor import __version__
from mailmentor.embedded_redis import EmbeddedRedis, running_url
from mailmentor.model import (
    ActionKind,
    Event,
    EventType,
    Kind,
    Loop,
    Person,
    PlannedAction,
    Stage,
)
from mailmentor.rules import default_rules_dir
from mailmentor.stages import replay
from mailmentor.store import Store, open_store
from tests.cli_support import exits, run
from tests.store_support import all_loops, put_gift, put_loop

ALAN = Person(address="alan@example.org", name="Alan Kay")
GRACE = Person(address="grace@example.net", name="Grace Hopper")
JSON_KEYS = {"id", "kind", "mentor", "subject", "stage", "created_at", "next_reminder_at"}

# Two mistakes, each on a line and column of its own.
BAD_RULES = """\
rule_sets:
  advice:
    match:
      kinds: [advice]
    stages:
      advised:
        after: 3x
        evry: 3d
"""


def make_loop(
    loop_id: str,
    *,
    stage: Stage = Stage.ADVISED,
    mentor: Person = ALAN,
    subject: str = "Advice on pricing page?",
    entered: datetime | None = None,
    next_action: PlannedAction | None = None,
) -> Loop:
    """A loop as intake would have stored it: created, then (maybe) advised."""
    entered = entered or datetime.now(UTC) - timedelta(hours=1)
    created = entered - timedelta(days=1)
    events = [
        Event(
            at=created,
            type=EventType.CREATED,
            source=f"message <{loop_id}-ask@client.example>",
            stage=Stage.ASKED,
        )
    ]
    if stage is not Stage.ASKED:
        events.append(
            Event(
                at=entered,
                type=EventType.ADVICE,
                source=f"message <{loop_id}-fwd@client.example>",
                stage=stage,
                detail="forwarded answer",
            )
        )
    loop = Loop(
        id=loop_id,
        kind=Kind.ADVICE,
        mentor=mentor,
        subject=subject,
        stage=stage,
        created_at=created,
        stage_entered_at=entered,
        message_ids=[f"{loop_id}-ask@client.example"],
        ask_excerpt="What would you change first?",
        advice_excerpt="Cut it to three plans." if stage is not Stage.ASKED else "",
        next_action=next_action,
    )
    return replay(loop, events)  # with the history's summaries, as the store keeps them


def write_rules(directory: Path, text: str, name: str = "bad.yaml") -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text(text)
    return path


# -- help and version ------------------------------------------------------------------------


def test_help_explains_the_service_and_lists_every_subcommand(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    result = exits(capsys, "--help")
    assert result.code == 0
    assert "BCC" in result.out
    assert "reminders" in result.out
    for command in ("run", "demo", "loops", "show", "rules", "plan"):
        assert re.search(rf"^\s+{command}\s+\S", result.out, re.MULTILINE), command


def test_rules_help_lists_check(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    result = exits(capsys, "rules", "--help")
    assert result.code == 0
    assert re.search(r"^\s+check\s+validate", result.out, re.MULTILINE)


def test_version(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    result = exits(capsys, "--version")
    assert (result.code, result.out) == (0, f"mailmentor {__version__}\n")


def test_no_command_is_a_usage_error(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    result = exits(capsys)
    assert result.code == 2
    assert "COMMAND" in result.err


# -- rules check -----------------------------------------------------------------------------


def test_rules_check_accepts_the_shipped_rules(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    result = run(capsys, "rules", "check")
    assert result.code == 0, result.err
    assert "OK" in result.out
    assert str(default_rules_dir()) in result.out
    assert result.err == ""


@pytest.mark.parametrize("target", ["directory", "file"])
def test_rules_check_prints_every_mistake_located(
    data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], target: str
) -> None:
    path = write_rules(tmp_path / "rules", BAD_RULES)
    argument = path.parent if target == "directory" else path
    result = run(capsys, "rules", "check", str(argument))
    assert result.code == 1
    assert "OK" not in result.out
    prefix = re.escape(str(path))
    located = [line for line in result.err_lines if line.startswith(str(path))]
    assert len(located) == 2, result.err
    assert re.fullmatch(
        rf"{prefix}:7:16: rule_sets\.advice\.stages\.advised\.after: .*3x.*", located[0]
    )
    assert re.fullmatch(
        rf"{prefix}:8:9: rule_sets\.advice\.stages\.advised\.evry: .*evry.*", located[1]
    )
    assert result.err_lines[-1] == f"2 problems in {argument}"


def test_rules_check_names_a_missing_directory(
    data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "no-such-rules"
    result = run(capsys, "rules", "check", str(missing))
    assert result.code != 0
    assert str(missing) in result.err
    assert "does not exist" in result.err


def test_rules_check_defaults_to_the_configured_rules_dir(
    data_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = write_rules(tmp_path / "mine", BAD_RULES)
    monkeypatch.setenv("MAILMENTOR_RULES_DIR", str(path.parent))
    result = run(capsys, "rules", "check")
    assert result.code == 1
    assert f"{path}:7:16:" in result.err


# -- loops -----------------------------------------------------------------------------------


def test_loops_json_lists_every_loop_with_iso_dates(
    cli_store: Store, capsys: pytest.CaptureFixture[str]
) -> None:
    entered = datetime(2026, 1, 5, 9, 30, tzinfo=UTC)
    due = entered + timedelta(days=2)
    advised = make_loop(
        "advisedlp1",
        entered=entered,
        next_action=PlannedAction(
            kind=ActionKind.REMIND, due_at=due, stage=Stage.ADVISED, rule="advice.advised"
        ),
    )
    closed = make_loop(
        "closedlp02", stage=Stage.CLOSED, mentor=GRACE, subject="Intro?", entered=entered
    )
    put_loop(cli_store, advised)
    put_loop(cli_store, closed)

    result = run(capsys, "loops", "--json")
    assert result.code == 0, result.err
    rows = json.loads(result.out)
    assert isinstance(rows, list)
    by_id = {row["id"]: row for row in rows}
    assert set(by_id) == {"advisedlp1", "closedlp02"}
    for row in rows:
        assert set(row) >= JSON_KEYS, row
    row = by_id["advisedlp1"]
    assert (row["kind"], row["mentor"], row["subject"], row["stage"]) == (
        "advice",
        {"address": "alan@example.org", "name": "Alan Kay"},
        "Advice on pricing page?",
        "advised",
    )
    assert datetime.fromisoformat(row["created_at"]) == advised.created_at
    assert datetime.fromisoformat(row["next_reminder_at"]) == due
    assert by_id["closedlp02"]["stage"] == "closed"
    assert by_id["closedlp02"]["next_reminder_at"] is None


def test_loops_json_on_an_empty_store(cli_store: Store, capsys: pytest.CaptureFixture[str]) -> None:
    result = run(capsys, "loops", "--json")
    assert (result.code, json.loads(result.out)) == (0, [])


def test_loops_table_shows_open_loops_and_all_adds_ended_ones(
    cli_store: Store, capsys: pytest.CaptureFixture[str]
) -> None:
    put_loop(cli_store, make_loop("openloop01"))
    put_loop(cli_store, make_loop("closedlp02", stage=Stage.CLOSED, mentor=GRACE))
    put_loop(cli_store, make_loop("droppedl03", stage=Stage.DROPPED, mentor=GRACE))

    table = run(capsys, "loops")
    assert table.code == 0, table.err
    assert "openloop01" in table.out
    assert "Alan Kay" in table.out
    assert "closedlp02" not in table.out
    assert "droppedl03" not in table.out

    everything = run(capsys, "loops", "--all")
    assert everything.code == 0, everything.err
    for loop_id in ("openloop01", "closedlp02", "droppedl03"):
        assert loop_id in everything.out


def test_loops_table_never_cuts_an_id_on_a_narrow_terminal(
    cli_store: Store, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("COLUMNS", "50")
    put_loop(
        cli_store,
        make_loop(
            "narrowid01",
            mentor=Person(address="alan.kay.the.great@example.org", name="Alan Curtis Kay"),
            subject="Advice on our pricing page, the onboarding and a few other things too",
        ),
    )
    result = run(capsys, "loops")
    assert result.code == 0, result.err
    assert "narrowid01" in result.out


# -- show ------------------------------------------------------------------------------------


def test_show_prints_mentor_subject_and_every_event(
    cli_store: Store, capsys: pytest.CaptureFixture[str]
) -> None:
    loop = make_loop("showloop01")
    loop.events.append(
        Event(
            at=loop.stage_entered_at + timedelta(minutes=5),
            type=EventType.NOTE,
            source="command note",
            stage=Stage.ADVISED,
            detail="call him on Friday",
        )
    )
    put_loop(cli_store, loop)

    result = run(capsys, "show", "showloop01")
    assert result.code == 0, result.err
    assert "showloop01" in result.out
    assert "Alan Kay <alan@example.org>" in result.out
    assert "Advice on pricing page?" in result.out
    assert len(loop.events) == 3
    for event in loop.events:
        assert event.source in result.out
    for text in ("created", "advice", "note", "forwarded answer", "call him on Friday"):
        assert text in result.out
    assert result.out.index("showloop01-ask@") < result.out.index("showloop01-fwd@")


def test_show_json_is_the_loops_json_shape_with_its_history(
    cli_store: Store, capsys: pytest.CaptureFixture[str]
) -> None:
    loop = make_loop("jsonloop01")
    put_loop(cli_store, loop)
    result = run(capsys, "show", "jsonloop01", "--json")
    assert result.code == 0, result.err
    shown = json.loads(result.out)
    assert set(shown) >= JSON_KEYS | {"events"}
    assert shown["mentor"] == {"address": ALAN.address, "name": ALAN.name}
    assert datetime.fromisoformat(shown["created_at"]) == loop.created_at
    assert [(e["type"], e["source"]) for e in shown["events"]] == [
        (str(e.type), e.source) for e in loop.events
    ]


def test_show_unknown_id_fails_clearly(
    cli_store: Store, capsys: pytest.CaptureFixture[str]
) -> None:
    result = run(capsys, "show", "nosuchloop")
    assert result.code == 1
    assert result.out == ""
    assert "no loop" in result.err
    assert "nosuchloop" in result.err


# -- plan ------------------------------------------------------------------------------------


def _stamp(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%a %Y-%m-%d %H:%M")


def test_plan_lists_upcoming_reminders_with_their_rule(
    cli_store: Store, capsys: pytest.CaptureFixture[str]
) -> None:
    entered = datetime.now(UTC) - timedelta(hours=1)
    put_loop(cli_store, make_loop("planloop01", entered=entered))
    put_loop(cli_store, make_loop("closedlp02", stage=Stage.CLOSED, entered=entered))

    result = run(capsys, "plan", "--days", "30")
    assert result.code == 0, result.err
    lines = [line for line in result.out.splitlines() if "planloop01" in line]
    # The shipped advice rule: two days after the advice, then once more three days later.
    assert len(lines) == 2, result.out
    assert all("advice.advised" in line and "remind" in line for line in lines)
    assert lines[0].startswith(_stamp(entered + timedelta(days=2)))
    assert lines[1].startswith(_stamp(entered + timedelta(days=5)))
    assert "Alan: Advice on pricing page?" in lines[0]
    assert "closedlp02" not in result.out
    assert result.out.splitlines()[-1] == "2 reminders in the next 30 days for 1 open loop"

    soon = run(capsys, "plan", "--days", "1")
    assert soon.out.splitlines() == ["0 reminders in the next 1 day for 1 open loop"]


def test_plan_with_edited_rules_changes_the_output(
    cli_store: Store, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    entered = datetime.now(UTC) - timedelta(hours=1)
    put_loop(cli_store, make_loop("planloop01", entered=entered))
    shipped = run(capsys, "plan", "--days", "30")

    # An edited copy of the shipped rules: advised loops get one reminder, after ten days.
    rules = yaml.safe_load((default_rules_dir() / "default.yaml").read_text())
    rules["rule_sets"]["advice"]["stages"]["advised"] = {"after": "10d"}
    edited_dir = tmp_path / "edited"
    write_rules(edited_dir, yaml.safe_dump(rules), name="default.yaml")

    edited = run(capsys, "plan", "--days", "30", "--rules", str(edited_dir))
    assert edited.code == 0, edited.err
    assert edited.out != shipped.out
    lines = [line for line in edited.out.splitlines() if "planloop01" in line]
    assert len(lines) == 1, edited.out
    assert lines[0].startswith(_stamp(entered + timedelta(days=10)))
    assert "advice.advised" in lines[0]


def test_plan_with_broken_rules_names_the_mistakes(
    cli_store: Store, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_rules(tmp_path / "broken", BAD_RULES)
    result = run(capsys, "plan", "--rules", str(path.parent))
    assert result.code == 2
    assert f"{path}:7:16:" in result.err
    assert f"{path}:8:9:" in result.err


# -- settings and Redis problems -------------------------------------------------------------


@pytest.mark.parametrize("argv", [["loops"], ["loops", "--json"], ["show", "x"], ["plan"], ["run"]])
def test_a_bad_setting_is_one_line_naming_the_variable(
    data_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
) -> None:
    monkeypatch.setenv("MAILMENTOR_IMAP_PORT", "abc")
    result = run(capsys, *argv)
    assert result.code == 2
    assert result.out == ""
    assert len(result.err_lines) == 1, result.err
    assert "MAILMENTOR_IMAP_PORT" in result.err_lines[0]


def test_a_bad_setting_in_dotenv_is_named_too(
    data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / ".env").write_text("MAILMENTOR_TIMEZONE=Mars/Olympus_Mons\n")
    result = run(capsys, "loops")
    assert result.code == 2
    assert len(result.err_lines) == 1, result.err
    assert "MAILMENTOR_TIMEZONE" in result.err_lines[0]


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def test_an_unreachable_redis_is_one_line_without_the_password(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("MAILMENTOR_REDIS_URL", f"redis://:hunter2@127.0.0.1:{_closed_port()}/0")
    result = run(capsys, "loops", "--json")
    assert result.code == 2
    assert result.out == ""
    assert len(result.err_lines) == 1, result.err
    assert "MAILMENTOR_REDIS_URL" in result.err
    assert "127.0.0.1" in result.err
    assert "hunter2" not in result.err


def test_a_malformed_redis_url_names_the_variable(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("MAILMENTOR_REDIS_URL", "http://localhost:6379")
    result = run(capsys, "loops")
    assert result.code == 2
    assert len(result.err_lines) == 1, result.err
    assert "MAILMENTOR_REDIS_URL" in result.err


# -- the embedded Redis ----------------------------------------------------------------------


def _server_processes(config: Path) -> list[int]:
    """Live processes started with this redis.conf (Linux /proc; empty elsewhere)."""
    found: list[int] = []
    proc = Path("/proc")
    if not proc.is_dir():
        return found
    needle = os.fsencode(config.resolve())
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
            status = (entry / "status").read_text()
        except OSError:
            continue
        if needle in cmdline and "State:\tZ" not in status:
            found.append(int(entry.name))
    return found


def _lock_is_free(lock: Path) -> bool:
    fd = os.open(lock, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    finally:
        os.close(fd)
    return True


def test_without_redis_url_the_embedded_redis_starts_and_stops(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for _ in range(2):  # the second run proves the first left nothing behind that blocks it
        result = run(capsys, "loops", "--json")
        assert result.code == 0, result.err
        assert json.loads(result.out) == []
    redis_dir = data_dir / "redis"
    assert (redis_dir / "redis.conf").is_file(), "the embedded Redis ran in MAILMENTOR_DATA_DIR"
    assert running_url(data_dir) is None
    assert _lock_is_free(redis_dir / "lock")
    assert _server_processes(redis_dir / "redis.conf") == []


def test_commands_share_an_embedded_redis_that_is_already_running(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """As under `mailmentor run`: the CLI uses the running server and leaves it running."""
    with EmbeddedRedis(data_dir) as server:
        client = redis.Redis.from_url(server.url)
        try:
            put_loop(open_store(client), make_loop("sharedlp01"))
            result = run(capsys, "loops", "--json")
            assert result.code == 0, result.err
            assert [row["id"] for row in json.loads(result.out)] == ["sharedlp01"]
            assert server.running
            assert client.ping()
        finally:
            client.close()


def test_digest_prints_the_weekly_digest_as_it_would_be_mailed(
    cli_store: Store, capsys: pytest.CaptureFixture[str]
) -> None:
    put_loop(cli_store, make_loop("digestlp01"))
    put_loop(cli_store, make_loop("closedlp02", stage=Stage.CLOSED))
    result = run(capsys, "digest")
    assert result.code == 0, result.err
    lines = result.out.splitlines()
    assert lines[0] == "Your week: 1 to do, 1 open loop"
    assert " 1. act on Alan's advice: Advice on pricing page? (advice came today)" in lines
    assert "What do you want to learn next?" in lines
    assert "Closed this week" in lines


def test_digest_is_listed_in_help(capsys: pytest.CaptureFixture[str]) -> None:
    result = exits(capsys, "digest", "--help")
    assert result.code == 0
    assert "rule files" in result.out


def test_forget_deletes_everything_kept_about_one_person(
    cli_store: Store, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for loop in (make_loop("alanloop01"), make_loop("alanloop02", stage=Stage.CLOSED)):
        put_loop(cli_store, loop.model_copy(update={"message_ids": [f"{loop.id}@client.example"]}))
    put_loop(cli_store, make_loop("graceloop1", mentor=GRACE))
    gift = Event(
        at=datetime.now(UTC), type=EventType.NOTE, source="message <g@x>", stage=Stage.CLOSED
    )
    put_gift(cli_store, "Alan@Example.org", gift)

    monkeypatch.setattr("sys.stdin.isatty", lambda: False)
    refused = run(capsys, "forget", "alan@example.org")
    assert refused.code == 2 and "--yes" in refused.err
    assert len(all_loops(cli_store)) == 3, "nothing deleted without consent"

    done = run(capsys, "forget", "ALAN@example.org", "--yes")
    assert done.code == 0, done.err
    assert done.out.strip() == "forgot alan@example.org: 2 loops and 1 recorded gifts deleted"
    assert [lp.id for lp in all_loops(cli_store)] == ["graceloop1"]
    # Only the opaque hash of a Message-ID stays, pointing at nothing: that mail is not
    # tracked again, and nothing about the person can be read from it.
    (entry,) = cli_store.loops.lookup(["alanloop01@client.example"]).values()
    assert cli_store.loops.get_many(entry.loops) == {}
    assert cli_store.loops.person("alan@example.org") is None
    assert [p.address for p in cli_store.loops.all_people()] == [GRACE.address]

    assert run(capsys, "forget", "alan@example.org", "--yes").out.strip() == (
        "nothing kept about alan@example.org"
    )
    assert run(capsys, "forget", "alan", "--yes").code == 2


def test_setup_problems_come_all_at_once_and_a_typo_is_pointed_out(tmp_path: Path) -> None:
    import subprocess
    import sys

    from tests.faults.processes import base_environment

    env = base_environment(tmp_path) | {
        "MAILMENTOR_IMAP_HOST": "imap.example.com",
        "MAILMENTOR_SMTP_HOTS": "smtp.example.com",
        "MAILMENTOR_DATA_DIR": str(tmp_path / "data"),
    }
    done = subprocess.run(
        [sys.executable, "-m", "mailmentor.cli", "run"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2, done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("mailmentor: error:")]
    assert len(errors) == 5 and "MAILMENTOR_SMTP_HOST: missing" in done.stderr, done.stderr
    assert "MAILMENTOR_SMTP_HOTS is not a mailmentor setting" in done.stderr
    assert "did you mean MAILMENTOR_SMTP_HOST?" in done.stderr


def test_output_cut_short_by_a_pipe_is_no_traceback(tmp_path: Path) -> None:
    import subprocess
    import sys

    process = subprocess.Popen(
        [sys.executable, "-m", "mailmentor.cli", "--help"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert process.stdout is not None and process.stderr is not None
    process.stdout.close()  # `| head -0`: the reader is gone before anything is written
    err = process.stderr.read().decode()
    process.stderr.close()
    process.wait(timeout=30)
    assert "Traceback" not in err and "BrokenPipeError" not in err, err
