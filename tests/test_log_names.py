"""Names in log lines read as words (issue 11): an owner is "pid 18540 on vm", a mailbox is
"ada@example.com on 127.0.0.1:1143 (INBOX)"; what the store keeps is unchanged. Pure."""

from __future__ import annotations

import pytest

from mailmentor.imap import ImapAccount
from mailmentor.liveness import ProcessId, describe_owner, this_process


@pytest.mark.parametrize(
    ("owner", "readable"),
    [
        ("vm:18540:912345:a1b2c3d4e5f6", "pid 18540 on vm"),
        ("vm:18540:912345:a1b2c3d4e5f6/3f2a9b1c", "pid 18540 on vm"),  # a watcher's owner
        ("vm:18540:912345:a1b2c3d4e5f6/3f2a9b1c/140213", "pid 18540 on vm"),  # a send mark
        ("7|vm:18540:912345:a1b2c3d4e5f6/3f2a9b1c", "pid 18540 on vm"),  # a lease's value
        ("build-3.example.org:77:1:", "pid 77 on build-3.example.org"),
        ("", ""),
        ("someone else", "someone else"),
        ("vm:notapid:1:2", "vm:notapid:1:2"),
    ],
)
def test_owners_read_as_a_pid_on_a_host(owner: str, readable: str) -> None:
    assert describe_owner(owner) == readable


def test_the_stored_owner_keeps_its_form() -> None:
    me = this_process()
    assert ProcessId.parse(str(me)) == me
    assert str(me).count(":") == 3
    assert describe_owner(f"{me}/abc") == f"pid {me.pid} on {me.host}" == me.readable


def test_a_mailbox_reads_as_a_user_on_a_server() -> None:
    account = ImapAccount("127.0.0.1", 1143, "ada@example.com", "secret", "none", "Sent")
    assert account.where == "ada@example.com on 127.0.0.1:1143"
    assert account.label == "ada@example.com on 127.0.0.1:1143 (Sent)"
    assert "secret" not in account.label
    assert account.key == "ada@example.com@127.0.0.1:1143/Sent", "the store's name is unchanged"
