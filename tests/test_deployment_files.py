"""docker-compose.yml and the Dockerfile name only what exists: services, mailmentor commands
(parsed by the real CLI parser), settings, and health checks that answer 0/1 for real."""

from __future__ import annotations

import re
import socket
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from mailmentor.cli import PARTS, build_parser, main
from mailmentor.settings import ENV_PREFIX, Settings
from mailmentor.store import Store
from tests.environment import clean_environment

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return loaded


def mailmentor_services() -> dict[str, dict[str, Any]]:
    return {
        name: service
        for name, service in compose()["services"].items()
        if service.get("command", [""])[0] == "mailmentor"
    }


def test_each_part_is_a_service_running_that_part() -> None:
    services = mailmentor_services()
    assert set(services) == set(PARTS)
    for name, service in services.items():
        assert service["command"] == ["mailmentor", name]
        # the real parser accepts it (exits on an unknown command or option)
        assert build_parser().parse_args(service["command"][1:]).command == name


def test_each_part_checks_its_own_health() -> None:
    for name, service in mailmentor_services().items():
        test = service["healthcheck"]["test"]
        assert test[0] == "CMD"
        assert test[1:] == ["mailmentor", "status", "--check", name]
        args = build_parser().parse_args(test[2:])
        assert (args.command, args.check) == ("status", name)


def test_work_can_be_scaled() -> None:
    """`--scale work=N` refuses services with a fixed container name or host port."""
    work = mailmentor_services()["work"]
    assert "container_name" not in work
    assert "ports" not in work


def test_the_settings_it_names_exist() -> None:
    fields = set(Settings.model_fields)
    named: set[str] = set()
    for service in mailmentor_services().values():
        named |= set(service.get("environment", {}))
    named |= set(re.findall(r"\b(MAILMENTOR_[A-Z_]+)=", DOCKERFILE.read_text()))
    assert named, "the compose file and Dockerfile set some settings"
    for variable in named:
        assert variable.startswith(ENV_PREFIX)
        assert variable.removeprefix(ENV_PREFIX).lower() in fields, f"{variable} is no setting"
    for service in mailmentor_services().values():
        assert service["environment"]["MAILMENTOR_REDIS_URL"].startswith("redis://redis:")


def test_redis_keeps_an_append_only_file_on_a_volume() -> None:
    redis_service = compose()["services"]["redis"]
    command = redis_service["command"]
    assert command[command.index("--appendonly") + 1] == "yes"
    (volume,) = redis_service["volumes"]
    name, mount = volume.split(":")
    assert mount == "/data" and name in compose()["volumes"]
    for service in mailmentor_services().values():
        assert service["depends_on"]["redis"]["condition"] == "service_healthy"


def test_the_production_image_leaves_the_demo_servers_out() -> None:
    text = DOCKERFILE.read_text()
    (install,) = re.findall(r"pip install .*", text)
    assert "demo" not in install and "test" not in install


@pytest.mark.parametrize("part", sorted(PARTS))
def test_the_health_check_answers_for_this_host(
    part: str,
    store: Store,
    redis_server: Any,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    clean_environment(monkeypatch, tmp_path)
    monkeypatch.setenv("MAILMENTOR_REDIS_URL", redis_server.url)
    check = mailmentor_services()[part]["healthcheck"]["test"][2:]
    host = socket.gethostname()

    assert main(check) == 1, "nothing runs the part yet"
    assert f"{part}: not running on {host}" in capsys.readouterr().err

    store.health.component_beat(part, host, "test-owner", timedelta(seconds=30))
    assert main(check) == 0
    assert capsys.readouterr().out.strip() == f"{part}: running on {host}"

    store.health.component_beat(part, "another-host", "other", timedelta(seconds=30))
    store.health.component_gone(part, host, "test-owner")
    assert main(check) == 1, "another machine running it does not make this one healthy"
