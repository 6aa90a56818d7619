"""Settings from overrides, MAILMENTOR_* variables and a secrets dir; errors name the variable."""

from __future__ import annotations

import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr

from mailmentor.errors import ConfigError
from mailmentor.settings import (
    SECRETS_DIR_ENV,
    Settings,
    load_settings,
    require_mail_accounts,
    secret_key,
)
from tests.environment import clean_environment


@pytest.fixture(autouse=True)
def isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    """No developer variables, no .env pickup, no /run/secrets: only what each test sets."""
    clean_environment(monkeypatch, tmp_path)
    monkeypatch.setenv("MAILMENTOR_DATA_DIR", str(tmp_path / "data"))
    yield tmp_path


def test_defaults_need_no_configuration(tmp_path: Path) -> None:
    settings = load_settings()
    assert (settings.imap_host, settings.imap_security, settings.smtp_security) == (
        "",
        "ssl",
        "starttls",
    )
    assert (settings.imap_configured, settings.smtp_configured) == (False, False)
    assert (settings.imap_port_or_default(), settings.smtp_port_or_default()) == (993, 587)
    assert settings.user_addresses == []
    assert settings.data_dir == tmp_path / "data"
    assert str(settings.tz) == "UTC"


def test_overrides_win_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAILMENTOR_IMAP_HOST", "imap.env.example")
    settings = load_settings(imap_host="imap.override.example", imap_port=1993)
    assert (settings.imap_host, settings.imap_port, settings.imap_port_or_default()) == (
        "imap.override.example",
        1993,
        1993,
    )


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Ada@Example.com", ["ada@example.com"]),
        (" ada@example.com , ADA@Work.Example ,", ["ada@example.com", "ada@work.example"]),
        ("", []),
    ],
)
def test_user_addresses_from_a_comma_list(
    monkeypatch: pytest.MonkeyPatch, value: str, expected: list[str]
) -> None:
    monkeypatch.setenv("MAILMENTOR_USER_ADDRESSES", value)
    assert load_settings().user_addresses == expected


def test_user_addresses_given_as_a_list_are_cleaned_too() -> None:
    settings = load_settings(user_addresses=[" Ada@Example.com "])
    assert settings.user_addresses == ["ada@example.com"]


def test_variables_are_read_case_insensitively_and_typed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAILMENTOR_SMTP_PORT", "2525")
    monkeypatch.setenv("mailmentor_smtp_security", "none")
    monkeypatch.setenv("MAILMENTOR_SERVICE_ADDRESS", " Mentor@Example.COM ")
    monkeypatch.setenv("MAILMENTOR_TIMEZONE", "Europe/Berlin")
    monkeypatch.setenv("MAILMENTOR_WORKER_THREADS", "4")
    settings = load_settings()
    assert (settings.smtp_port, settings.smtp_security, settings.worker_threads) == (
        2525,
        "none",
        4,
    )
    assert settings.service_address == "mentor@example.com"
    assert settings.tz.key == "Europe/Berlin"


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("IMAP_PORT", "imap", "MAILMENTOR_IMAP_PORT: Input should be a valid integer"),
        ("IMAP_PORT", "70000", "MAILMENTOR_IMAP_PORT: Input should be less than or equal to 65535"),
        ("IMAP_PORT", "-1", "MAILMENTOR_IMAP_PORT: Input should be greater than or equal to 0"),
        ("SMTP_PORT", "", "MAILMENTOR_SMTP_PORT: Input should be a valid integer"),
        ("TIMEZONE", "Mars/Olympus", "MAILMENTOR_TIMEZONE: unknown time zone 'Mars/Olympus'"),
        ("TIMEZONE", "../../etc/passwd", "MAILMENTOR_TIMEZONE: unknown time zone"),
        ("USER_ADDRESSES", "ada@example.com,ada", "MAILMENTOR_USER_ADDRESSES: 'ada' is not an"),
        ("USER_ADDRESSES", "ada smith@example.com", "MAILMENTOR_USER_ADDRESSES: 'ada smith@"),
        ("SERVICE_ADDRESS", "mentor@example", "MAILMENTOR_SERVICE_ADDRESS: 'mentor@example' is"),
        ("SERVICE_ADDRESS", "@example.com", "MAILMENTOR_SERVICE_ADDRESS: '@example.com' is not"),
        ("IMAP_SECURITY", "tls", "MAILMENTOR_IMAP_SECURITY: Input should be 'ssl', 'starttls'"),
        ("SMTP_SECURITY", "SSL", "MAILMENTOR_SMTP_SECURITY: Input should be 'ssl'"),
        ("WORKER_THREADS", "0", "MAILMENTOR_WORKER_THREADS: Input should be greater than"),
        ("SCHEDULER_INTERVAL", "0", "MAILMENTOR_SCHEDULER_INTERVAL: Input should be greater"),
    ],
)
def test_a_bad_value_is_one_config_error_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, message: str
) -> None:
    monkeypatch.setenv(f"MAILMENTOR_{variable}", value)
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert str(caught.value).startswith(message)
    assert "\n" not in str(caught.value)


def test_bad_override_names_the_variable_too() -> None:
    with pytest.raises(ConfigError, match=r"^MAILMENTOR_TIMEZONE: unknown time zone 'Nowhere'"):
        load_settings(timezone="Nowhere")


@pytest.mark.parametrize(
    ("security", "imap", "smtp"), [("ssl", 993, 465), ("starttls", 143, 587), ("none", 143, 25)]
)
def test_default_ports_follow_the_security(security: str, imap: int, smtp: int) -> None:
    settings = load_settings(imap_security=security, smtp_security=security)
    assert (settings.imap_port_or_default(), settings.smtp_port_or_default()) == (imap, smtp)


# --- what a real deployment must set --------------------------------------------------------------

COMPLETE = {
    "imap_host": "imap.example.com",
    "imap_user": "ada",
    "imap_password": "pw",
    "smtp_host": "smtp.example.com",
    "service_address": "mentor@example.com",
    "user_addresses": ["ada@example.com"],
}


def test_require_mail_accounts_accepts_a_complete_setup() -> None:
    require_mail_accounts(load_settings(**COMPLETE))


@pytest.mark.parametrize(
    ("missing", "variable"),
    [
        ("imap_user", "MAILMENTOR_IMAP_USER"),
        ("imap_password", "MAILMENTOR_IMAP_PASSWORD"),
        ("smtp_host", "MAILMENTOR_SMTP_HOST"),
        ("service_address", "MAILMENTOR_SERVICE_ADDRESS"),
        ("user_addresses", "MAILMENTOR_USER_ADDRESSES"),
    ],
)
def test_require_mail_accounts_names_the_missing_variable(missing: str, variable: str) -> None:
    values = {k: v for k, v in COMPLETE.items() if k != missing}
    with pytest.raises(ConfigError, match=rf"^{variable}: missing"):
        require_mail_accounts(load_settings(**values))


# --- secrets --------------------------------------------------------------------------------------


def test_secret_key_is_generated_once_and_kept_private(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path / "deep" / "data")
    first = secret_key(settings)
    path = tmp_path / "deep" / "data" / "secret_key"
    assert len(first) == 64 and path.read_text().strip().encode() == first
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert secret_key(load_settings(data_dir=tmp_path / "deep" / "data")) == first
    assert secret_key(load_settings(data_dir=tmp_path / "other")) != first


def test_a_given_secret_key_wins_and_writes_nothing(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "secret_key").write_text("stored\n")
    monkeypatch.setenv("MAILMENTOR_SECRET_KEY", "from-the-environment")
    assert secret_key(load_settings()) == b"from-the-environment"
    assert secret_key(load_settings(secret_key="override")) == b"override"
    assert secret_key(load_settings(secret_key="")) == b"stored"


def test_an_empty_stored_secret_key_is_refused(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "secret_key").write_text("\n")
    with pytest.raises(ConfigError, match=r"^MAILMENTOR_DATA_DIR: .*secret_key.* is empty"):
        secret_key(load_settings())


def test_an_unwritable_data_dir_is_a_config_error(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with pytest.raises(ConfigError, match=r"^MAILMENTOR_DATA_DIR: cannot keep the secret key"):
        secret_key(load_settings(data_dir=blocker / "data"))


def test_passwords_come_from_the_secrets_dir(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    secrets_dir = tmp_path / "secrets"
    secrets_dir.mkdir()
    (secrets_dir / "mailmentor_imap_password").write_text("imap-hunter2\n")
    (secrets_dir / "mailmentor_smtp_password").write_text("smtp-hunter2")
    monkeypatch.setenv(SECRETS_DIR_ENV, str(secrets_dir))
    settings = load_settings()
    assert isinstance(settings.imap_password, SecretStr)
    assert settings.imap_password.get_secret_value() == "imap-hunter2"
    assert settings.smtp_password.get_secret_value() == "smtp-hunter2"


def test_the_environment_wins_over_the_secrets_dir(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    secrets_dir = tmp_path / "secrets"
    secrets_dir.mkdir()
    (secrets_dir / "mailmentor_imap_password").write_text("from-file")
    monkeypatch.setenv(SECRETS_DIR_ENV, str(secrets_dir))
    monkeypatch.setenv("MAILMENTOR_IMAP_PASSWORD", "from-env")
    assert load_settings().imap_password.get_secret_value() == "from-env"


def test_a_dot_env_file_in_the_working_directory_is_read(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("MAILMENTOR_IMAP_HOST=imap.dotenv.example\n")
    assert load_settings().imap_host == "imap.dotenv.example"


def test_secrets_never_show_in_repr_or_str() -> None:
    settings = load_settings(
        imap_password="imap-hunter2", smtp_password="smtp-hunter2", secret_key="key-hunter2"
    )
    for text in (repr(settings), str(settings), str(settings.model_dump())):
        assert "hunter2" not in text
    assert isinstance(settings, Settings)


def test_every_invalid_setting_is_named_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    from mailmentor.errors import ConfigError
    from mailmentor.settings import load_settings

    monkeypatch.setenv("MAILMENTOR_IMAP_PORT", "seventy")
    monkeypatch.setenv("MAILMENTOR_TIMEZONE", "Mars/Olympus")
    with pytest.raises(ConfigError) as caught:
        load_settings()
    lines = str(caught.value).splitlines()
    assert [line.split(":")[0] for line in lines] == ["MAILMENTOR_IMAP_PORT", "MAILMENTOR_TIMEZONE"]


def test_every_missing_account_setting_is_named_at_once() -> None:
    from mailmentor.errors import ConfigError
    from mailmentor.settings import Settings, require_mail_accounts

    settings = Settings.model_validate({"imap_host": "imap.example.com"})
    with pytest.raises(ConfigError) as caught:
        require_mail_accounts(settings)
    named = [line.split(":")[0] for line in str(caught.value).splitlines()]
    assert named == [
        "MAILMENTOR_IMAP_USER",
        "MAILMENTOR_IMAP_PASSWORD",
        "MAILMENTOR_SMTP_HOST",
        "MAILMENTOR_SERVICE_ADDRESS",
        "MAILMENTOR_USER_ADDRESSES",
    ]


def test_a_misspelt_variable_is_named_with_the_setting_it_probably_meant() -> None:
    from mailmentor.settings import unknown_variables

    lines = unknown_variables(
        {"MAILMENTOR_IMAP_HOTS": "x", "MAILMENTOR_SECRETS_DIR": "/s", "HOME": "/root"},
        ["mailmentor_smtp_pasword", "MAILMENTOR_IMAP_HOST"],
    )
    assert lines == [
        "MAILMENTOR_IMAP_HOTS is not a mailmentor setting and is ignored"
        " (did you mean MAILMENTOR_IMAP_HOST?)",
        "MAILMENTOR_SMTP_PASWORD is not a mailmentor setting and is ignored"
        " (did you mean MAILMENTOR_SMTP_PASSWORD?)",
    ]
