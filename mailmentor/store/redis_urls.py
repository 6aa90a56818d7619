"""What MAILMENTOR_REDIS_URL may say, read without connecting: one Redis (``redis://``,
``rediss://`` with TLS, ``unix://``) or a master found through Redis Sentinel.

redis-py reads plain URLs itself but has no URL for Sentinel, so this module defines one, in
the form other clients use::

    redis+sentinel://[[user]:password@]host[:port][,host[:port]...]/master[/db][?options]
    rediss+sentinel://...        the same, with TLS to the sentinels and to the master

``password`` (and ``user``) are the master's; ``sentinel_password`` (and ``sentinel_user``)
in the query are the sentinels' own when they have one. Other query options are redis-py's
connection options (``ssl_ca_certs=``, ``ssl_cert_reqs=``, ``socket_timeout=``...).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import parse_qsl, unquote

from mailmentor.errors import ConfigError

SENTINEL_SCHEMES = {"redis+sentinel": False, "rediss+sentinel": True}
PLAIN_SCHEMES = ("redis", "rediss", "unix")
#: Redis Sentinel's own port.
SENTINEL_PORT = 26379
#: Query options that carry secrets (masked by `redact_url`).
SECRET_OPTIONS = ("password", "sentinel_password")

_SETTING = "MAILMENTOR_REDIS_URL"


@dataclass(frozen=True)
class SentinelAddress:
    """Where the sentinels are, which master they watch, and how to talk to both."""

    sentinels: tuple[tuple[str, int], ...]
    master: str
    db: int = 0
    tls: bool = False
    username: str | None = None
    password: str | None = None
    sentinel_username: str | None = None
    sentinel_password: str | None = None
    #: redis-py connection options from the query, as strings (redis-py converts them).
    options: dict[str, str] = field(default_factory=dict)


def is_sentinel_url(url: str) -> bool:
    return url.partition("://")[0].lower() in SENTINEL_SCHEMES


def parse_sentinel_url(url: str) -> SentinelAddress:
    """The parts of a ``redis+sentinel://`` URL; ConfigError naming the setting and what is
    wrong with it."""
    scheme, sep, rest = url.partition("://")
    if not sep or scheme.lower() not in SENTINEL_SCHEMES:
        raise ConfigError(f"{_SETTING}: {scheme!r} is not redis+sentinel or rediss+sentinel")
    # The userinfo ends at the last "@" (an unencoded "/" or "@" in a password stays in it, so
    # no error below can quote a piece of the password as a host or path).
    before_query, _, query = rest.partition("?")
    userinfo, at, after = before_query.rpartition("@")
    hosts, _, path = after.partition("/")
    username = password = None
    if at:
        user, colon, secret = userinfo.partition(":")
        username = unquote(user) or None
        password = unquote(secret) if colon else None
    sentinels = tuple(_host_port(part) for part in hosts.split(",") if part.strip())
    if not sentinels:
        raise ConfigError(f"{_SETTING}: name at least one sentinel, as host:port after //")
    segments = [unquote(s) for s in path.split("/") if s]
    if not segments or len(segments) > 2:
        raise ConfigError(
            f"{_SETTING}: the path must name the master the sentinels watch, and may add a "
            f"database number (/mymaster or /mymaster/0); got {'/' + path!r}"
        )
    db = 0
    if len(segments) == 2:
        if not segments[1].isdigit():
            raise ConfigError(f"{_SETTING}: database {segments[1]!r} is not a number")
        db = int(segments[1])
    options = dict(parse_qsl(query, keep_blank_values=True))
    return SentinelAddress(
        sentinels=sentinels,
        master=segments[0],
        db=db,
        tls=SENTINEL_SCHEMES[scheme.lower()],
        username=username,
        password=options.pop("password", None) or password,
        sentinel_username=options.pop("sentinel_username", None),
        sentinel_password=options.pop("sentinel_password", None),
        options=options,
    )


def _host_port(text: str) -> tuple[str, int]:
    text = text.strip()
    if text.startswith("["):  # [ipv6]:port
        host, _, port = text[1:].partition("]")
        port = port.removeprefix(":")
    else:
        host, _, port = text.rpartition(":") if ":" in text else (text, "", "")
    if not host:
        raise ConfigError(f"{_SETTING}: sentinel {text!r} has no host")
    if port and not port.isdigit():
        raise ConfigError(f"{_SETTING}: sentinel {text!r}: port {port!r} is not a number")
    return host, int(port) if port else SENTINEL_PORT


def redact_url(url: str) -> str:
    """``redis://user:secret@host`` → ``redis://user:***@host`` (also a sentinel URL's and the
    query's passwords): URLs go into logs and `status`, and may carry passwords."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    # The userinfo ends at the last "@": an unencoded "/", "#" or "@" in a password hides more
    # than the password rather than showing part of it.
    userinfo, at, after = rest.rpartition("@")
    if at and ":" in userinfo:
        userinfo = f"{userinfo.partition(':')[0]}:***"
    location, question, query = after.partition("?")
    if question:
        query, hash_, fragment = query.partition("#")
        pairs = [pair.partition("=") for pair in query.split("&")]
        query = "&".join(
            f"{name}{eq}{'***' if unquote(name) in SECRET_OPTIONS else value}"
            for name, eq, value in pairs
        )
        query += hash_ + fragment
    return f"{scheme}://{userinfo}{at}{location}{question}{query}"
