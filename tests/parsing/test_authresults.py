"""Authentication-Results (RFC 8601): header values in, results and verdicts out, as pairs."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailmentor.parsing.authresults import (
    AuthResult,
    parse_authentication_results,
    sender_verified,
)
from mailmentor.parsing.message import parse_message
from tests.parsing._support import corpus


def R(server: str, method: str, result: str, *props: tuple[str, str]) -> AuthResult:
    return AuthResult(server, method, result, tuple(props))


GMAIL = (
    "mx.google.com;\r\n"
    "       dkim=pass header.i=@example.com header.s=20230601 header.b=Xq3/+k9a;\r\n"
    "       spf=pass (google.com: domain of ada@example.com designates 209.85.220.41 as"
    " permitted sender) smtp.mailfrom=ada@example.com;\r\n"
    "       dmarc=pass (p=NONE sp=NONE dis=NONE) header.from=example.com"
)
FASTMAIL = (
    "mx4.messagingengine.com;\n"
    "    arc=none (no signatures found);\n"
    "    dkim=pass (2048-bit rsa key sha256) header.d=example.com header.i=@example.com\n"
    "      header.b=AbCdEf12 header.a=rsa-sha256 header.s=fm3 x-bits=2048;\n"
    "    dmarc=pass policy.published-domain-policy=none policy.applied-disposition=none\n"
    "      policy.evaluated-disposition=none (p=none,d=none,d.eval=none) policy.policy-from=p\n"
    "      header.from=example.com;\n"
    "    iprev=pass smtp.remote-ip=66.111.4.25 (out1-smtp.messagingengine.com);\n"
    "    spf=pass smtp.mailfrom=ada@example.com smtp.helo=out1-smtp.messagingengine.com"
)
#: Outlook.com / Microsoft 365 write no authserv-id at all, so no result can be attributed.
OUTLOOK = (
    "spf=pass (sender IP is 40.107.22.53) smtp.mailfrom=example.com; dkim=pass (signature"
    " was verified) header.d=example.com;dmarc=pass action=none header.from=example.com;"
    "compauth=pass reason=100"
)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        # RFC 8601 appendix B.2: nothing was checked.
        ("example.org 1; none", []),
        # B.3: SPF only.
        (
            "example.com; spf=pass smtp.mailfrom=example.net",
            [R("example.com", "spf", "pass", ("smtp.mailfrom", "example.net"))],
        ),
        # B.4: several results, comments between them, folding.
        (
            "example.com;\r\n          auth=pass (cram-md5) smtp.auth=sender@example.net;\r\n"
            "          spf=pass smtp.mailfrom=example.net",
            [
                R("example.com", "auth", "pass", ("smtp.auth", "sender@example.net")),
                R("example.com", "spf", "pass", ("smtp.mailfrom", "example.net")),
            ],
        ),
        (
            "example.com; iprev=pass\r\n          policy.iprev=192.0.2.200",
            [R("example.com", "iprev", "pass", ("policy.iprev", "192.0.2.200"))],
        ),
        # B.5 and B.6: header.i with only a domain, two signatures in one header.
        (
            "example.net;\r\n          dkim=pass (good signature) header.i=@newyork.example.com",
            [R("example.net", "dkim", "pass", ("header.i", "@newyork.example.com"))],
        ),
        (
            "mail-router.example.net;\r\n          dkim=pass (good signature)"
            " header.d=newyork.example.com\r\n                header.b=oINEO8hg;\r\n"
            "          dkim=fail (bad signature) header.d=mail-router.example.net\r\n"
            "                header.b=EToRSuvU",
            [
                R(
                    "mail-router.example.net",
                    "dkim",
                    "pass",
                    ("header.d", "newyork.example.com"),
                    ("header.b", "oINEO8hg"),
                ),
                R(
                    "mail-router.example.net",
                    "dkim",
                    "fail",
                    ("header.d", "mail-router.example.net"),
                    ("header.b", "EToRSuvU"),
                ),
            ],
        ),
        # B.7: comments everywhere CFWS may go, a method version and a dotted property split up.
        (
            "foo.example.net (foobar) 1 (baz);\r\n    dkim (Because I like it) / 1 (One yay) ="
            " (wait for it) fail\r\n      policy (A dot can go here) . (like that) expired\r\n"
            "      (this surprised me) = (as I wasn't expecting it) 1362471462",
            [R("foo.example.net", "dkim", "fail", ("policy.expired", "1362471462"))],
        ),
        # Real-world shapes.
        (
            GMAIL,
            [
                R(
                    "mx.google.com",
                    "dkim",
                    "pass",
                    ("header.i", "@example.com"),
                    ("header.s", "20230601"),
                    ("header.b", "Xq3/+k9a"),
                ),
                R("mx.google.com", "spf", "pass", ("smtp.mailfrom", "ada@example.com")),
                R("mx.google.com", "dmarc", "pass", ("header.from", "example.com")),
            ],
        ),
        (OUTLOOK, []),
        # Case, quoting, nested and escaped comments, base64 padding, a trailing ';'.
        (
            'MX.Example.COM; DKIM=Pass reason="good; really" header.d=Example.com;',
            [
                R(
                    "mx.example.com",
                    "dkim",
                    "pass",
                    ("reason", "good; really"),
                    ("header.d", "Example.com"),
                )
            ],
        ),
        (
            '"mx.example.com" 1; spf=fail (a (nested \\) comment) here) smtp.mailfrom=x.org',
            [R("mx.example.com", "spf", "fail", ("smtp.mailfrom", "x.org"))],
        ),
        (
            "mx.example.com; dkim=pass header.b=YWJjZA== header.d = example.com",
            [
                R(
                    "mx.example.com",
                    "dkim",
                    "pass",
                    ("header.b", "YWJjZA=="),
                    ("header.d", "example.com"),
                )
            ],
        ),
        # A value cut inside a comment (a length bound) keeps what came before it.
        (
            "mx.example.com; dkim=pass header.d=example.com; spf=pass (google.com: domain of a",
            [
                R("mx.example.com", "dkim", "pass", ("header.d", "example.com")),
                R("mx.example.com", "spf", "pass"),
            ],
        ),
        # Malformed resinfo is skipped, the rest kept.
        (
            "mx.example.com; garbage; =pass; dkim=; spf=pass smtp.mailfrom=example.com",
            [R("mx.example.com", "spf", "pass", ("smtp.mailfrom", "example.com"))],
        ),
    ],
)
def test_parse(value: str, expected: list[AuthResult]) -> None:
    assert parse_authentication_results(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        "",
        "   ",
        ";;;",
        "; dkim=pass header.d=example.com",  # no authserv-id
        "i=1; mx.google.com; dkim=pass header.d=example.com",  # an ARC header's shape
        "mx.example.com v1; dkim=pass header.d=example.com",  # version is not a number
        "mx.example.com 1 2; dkim=pass",
        'mx.example.com; dkim=pass header.d="example.com',  # a quote that never ends
        '"mx example com"; dkim=pass header.d=example.com',
        "(only a comment",
        "\x00\x01\x02; =;=;",
        "mx.example.com; none",
    ],
)
def test_garbage_gives_nothing(value: str) -> None:
    assert parse_authentication_results(value) == []


@given(st.text(max_size=300))
def test_never_raises(value: str) -> None:
    results = parse_authentication_results(value)
    assert all(isinstance(r, AuthResult) for r in results)
    sender_verified([value], "mx.example.com", "ada@example.com")


def test_results_are_hashable_and_properties_readable() -> None:
    result = parse_authentication_results(GMAIL)[0]
    assert hash(result) == hash(parse_authentication_results(GMAIL)[0])
    assert (result.get("header.i"), result.get("HEADER.S"), result.get("header.d")) == (
        "@example.com",
        "20230601",
        "",
    )


# --- who is verified ------------------------------------------------------------------------------

OURS = "mx.example.net"


def ours(resinfo: str) -> str:
    return f"{OURS}; {resinfo}"


@pytest.mark.parametrize(
    ("headers", "sender", "expected"),
    [
        # Aligned passes.
        ([ours("dkim=pass header.d=example.com")], "ada@example.com", None),
        ([ours("dkim=pass header.i=@example.com")], "ada@example.com", None),
        ([ours("dkim=pass header.i=ada@mail.example.com")], "ada@mail.example.com", None),
        ([ours("dkim=pass header.d=example.com")], "ada@eu.mail.example.com", None),  # parent
        ([ours("spf=pass smtp.mailfrom=ada@example.com")], "ada@example.com", None),
        ([ours("spf=pass smtp.mailfrom=bounce.example.com")], "ada@example.com", None),  # under
        ([ours("spf=pass smtp.mailfrom=<b@Bounce.Example.COM.>")], "ada@example.com", None),
        ([ours("dmarc=pass header.from=example.com")], "ada@example.com", None),
        ([ours("dmarc=pass header.from=Example.COM")], "Ada@EXAMPLE.com", None),
        ([ours("dkim=pass header.d=xn--bcher-kva.example")], "ada@bücher.example", None),
        # One aligned pass is enough, among failures and other headers.
        (
            [
                ours("dkim=fail header.d=example.com"),
                ours("spf=softfail smtp.mailfrom=example.com"),
                ours("dkim=pass header.d=example.com"),
            ],
            "ada@example.com",
            None,
        ),
        ([f"MX.EXAMPLE.NET; {GMAIL.split(';', 1)[1]}"], "ada@example.com", None),
        # Failures, named.
        (
            [ours("dkim=fail header.d=example.com; spf=softfail smtp.mailfrom=example.com")],
            "ada@example.com",
            "dkim=fail, spf=softfail for example.com",
        ),
        (
            [ours("dkim=pass header.d=evil.example; spf=pass smtp.mailfrom=evil.example")],
            "ada@example.com",
            "dkim=pass (evil.example), spf=pass (evil.example) for example.com",
        ),
        # Alignment is not a suffix match on text, and a TLD is nobody's parent.
        ([ours("dkim=pass header.d=notexample.com")], "ada@example.com", "dkim=pass"),
        ([ours("dkim=pass header.d=com")], "ada@example.com", "dkim=pass (com)"),
        ([ours("spf=pass smtp.mailfrom=example.com")], "ada@mail.example.com", "spf=pass"),
        ([ours("dkim=pass header.d=mail.example.com")], "ada@example.com", "dkim=pass"),
        ([ours("dmarc=pass header.from=mail.example.com")], "ada@example.com", "dmarc=pass"),
        ([ours("dkim=pass")], "ada@example.com", "dkim=pass (no header.d) for example.com"),
        ([ours("iprev=pass smtp.remote-ip=192.0.2.1")], "ada@example.com", "no dkim, spf or"),
        ([ours("none")], "ada@example.com", "no dkim, spf or dmarc result for example.com"),
        # Only our server counts: a header from any other host may be forged (RFC 8601 §5).
        ([], "ada@example.com", "no Authentication-Results from mx.example.net"),
        (
            ["mx.evil.example; dkim=pass header.d=example.com", GMAIL],
            "ada@example.com",
            "no Authentication-Results from mx.example.net (seen: mx.evil.example, mx.google.com)",
        ),
        (
            [OUTLOOK],
            "ada@example.com",
            "no Authentication-Results from mx.example.net (seen: one without an authserv-id)",
        ),
        (
            ["mx.example.net.evil.example; dkim=pass header.d=example.com"],
            "ada@example.com",
            "no Authentication-Results from mx.example.net",
        ),
        # Unusable From.
        ([ours("dkim=pass header.d=example.com")], "", "no domain in From address"),
        ([ours("dkim=pass header.d=example.com")], "not-an-address", "no domain in From"),
    ],
)
def test_sender_verified(headers: list[str], sender: str, expected: str | None) -> None:
    reason = sender_verified(headers, OURS, sender)
    if expected is None:
        assert reason is None
    else:
        assert reason is not None
        assert reason.startswith(expected)


def test_authserv_id_is_case_insensitive_and_may_list_several() -> None:
    header = FASTMAIL
    assert sender_verified([header], "MX4.MessagingEngine.com", "ada@example.com") is None
    several = "mx1.messagingengine.com, mx4.messagingengine.com"
    assert sender_verified([header], several, "ada@example.com") is None
    reason = sender_verified([header], "mx1.messagingengine.com,mx2.messagingengine.com", "a@x.io")
    assert reason == (
        "no Authentication-Results from mx1.messagingengine.com or mx2.messagingengine.com"
        " (seen: mx4.messagingengine.com)"
    )
    assert sender_verified([header], " , ", "ada@example.com") == (
        "no authserv-id configured to trust"
    )


@pytest.mark.parametrize(
    ("name", "authserv_id", "expected"),
    [
        # Gmail in 2010 wrote smtp.mail= (before RFC 5451 named it smtp.mailfrom).
        ("plain_emails/raw_email_trailing_dot.eml", "mx.google.com", None),
        ("plain_emails/basic_email.eml", "mx.google.com", "spf=neutral for "),
        # Yahoo's old form has no readable authserv-id: it can vouch for nobody.
        ("error_emails/bad_date_header.eml", "mta1007.mail.sp2.yahoo.com", "no Authentication-"),
    ],
)
def test_real_mail(name: str, authserv_id: str, expected: str | None) -> None:
    msg = parse_message((corpus("mikel-mail") / name).read_bytes())
    assert msg.sender is not None
    reason = sender_verified(msg.authentication_results, authserv_id, msg.sender.address)
    assert reason == expected if expected is None else (reason or "").startswith(expected)


def test_every_corpus_header_parses_without_error() -> None:
    """Every Authentication-Results in the shared corpora goes through parser and check."""
    root = corpus("mikel-mail").parent
    seen = 0
    for path in sorted(root.rglob("*.eml")):
        raw = path.read_bytes()
        if b"authentication-results" not in raw.lower():
            continue
        msg = parse_message(raw)
        for value in msg.authentication_results:
            seen += 1
            for result in parse_authentication_results(value):
                assert result.method and result.result and result.authserv_id
        sender = msg.sender.address if msg.sender else ""
        sender_verified(msg.authentication_results, "mx.google.com", sender)
    assert seen >= 10
