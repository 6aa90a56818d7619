"""Reading MAILMENTOR_REDIS_URL: the Sentinel form, and what goes into logs (no passwords)."""

from __future__ import annotations

import pytest

from mailmentor.errors import ConfigError
from mailmentor.store.redis_urls import (
    SentinelAddress,
    is_sentinel_url,
    parse_sentinel_url,
    redact_url,
)


def test_a_sentinel_url_names_sentinels_master_and_database() -> None:
    address = parse_sentinel_url(
        "redis+sentinel://:s3cret@s1.example,s2.example:26380,[::1]:5000/mymaster/2"
        "?sentinel_password=other&socket_keepalive=true"
    )
    assert address == SentinelAddress(
        sentinels=(("s1.example", 26379), ("s2.example", 26380), ("::1", 5000)),
        master="mymaster",
        db=2,
        password="s3cret",
        sentinel_password="other",
        options={"socket_keepalive": "true"},
    )


def test_rediss_sentinel_means_tls_everywhere() -> None:
    address = parse_sentinel_url("rediss+sentinel://u:p@h:1/m?ssl_ca_certs=/ca.pem")
    assert address.tls and address.username == "u" and address.password == "p"
    assert address.options == {"ssl_ca_certs": "/ca.pem"} and address.db == 0


@pytest.mark.parametrize(
    ("url", "sentinel"),
    [
        ("redis+sentinel://h/m", True),
        ("REDISS+SENTINEL://h/m", True),
        ("redis://h:6379/0", False),
        ("unix:///tmp/r.sock", False),
    ],
)
def test_which_urls_go_through_sentinel(url: str, sentinel: bool) -> None:
    assert is_sentinel_url(url) is sentinel


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("redis+sentinel:///m", "name at least one sentinel"),
        ("redis+sentinel://h:1", "the path must name the master"),
        ("redis+sentinel://h:1/m/0/extra", "the path must name the master"),
        ("redis+sentinel://h:1/m/zero", "database 'zero' is not a number"),
        ("redis+sentinel://h:port/m", "port 'port' is not a number"),
        ("redis+sentinel://:1/m", "has no host"),
    ],
)
def test_a_wrong_sentinel_url_says_what_is_wrong(url: str, message: str) -> None:
    with pytest.raises(ConfigError, match="MAILMENTOR_REDIS_URL") as error:
        parse_sentinel_url(url)
    assert message in str(error.value)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("redis://localhost:6379/0", "redis://localhost:6379/0"),
        ("redis://:s3cret@localhost:6379/0", "redis://:***@localhost:6379/0"),
        ("rediss://me:s3cret@redis.example:6380", "rediss://me:***@redis.example:6380"),
        ("unix:///tmp/redis.sock", "unix:///tmp/redis.sock"),
        ("redis://me@localhost", "redis://me@localhost"),
        ("redis+sentinel://:pw@a:1,b:2/m/0", "redis+sentinel://:***@a:1,b:2/m/0"),
        (
            "redis+sentinel://a:1/m?sentinel_password=x&socket_timeout=3",
            "redis+sentinel://a:1/m?sentinel_password=***&socket_timeout=3",
        ),
        ("unix:///r.sock?password=x", "unix:///r.sock?password=***"),
        # unencoded characters in a password hide more, never show part of it
        ("redis://:pa/ss@h:6379/0", "redis://:***@h:6379/0"),
        ("redis://u:pa#ss@h", "redis://u:***@h"),
        ("redis+sentinel://:p@ss@h1/m", "redis+sentinel://:***@h1/m"),
        ("", ""),
    ],
)
def test_redact_url(url: str, expected: str) -> None:
    assert redact_url(url) == expected


def test_a_password_with_unencoded_characters_stays_whole() -> None:
    """The userinfo ends at the last "@", so a "/" in a password is not taken for the path."""
    address = parse_sentinel_url("redis+sentinel://:pa/ss@h1/m")
    assert (address.password, address.sentinels, address.master) == ("pa/ss", (("h1", 26379),), "m")
