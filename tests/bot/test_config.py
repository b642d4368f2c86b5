"""One validated settings object; a bad config stops start-up naming the key and the fix."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from bot.config import ConfigError, load_settings

ROOT = Path(__file__).resolve().parents[2]


def write_config(tmp_path: Path, change) -> Path:
    data = yaml.safe_load((ROOT / "config.yml").read_text())
    change(data)
    path = tmp_path / "config.yml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True))
    return path


def test_the_shipped_config_has_working_defaults():
    settings = load_settings(ROOT / "config.yml", environ={})
    assert settings.company.name == "PT Contoh Sejahtera"
    assert settings.company.timezone == "Asia/Jakarta"
    assert settings.languages == ("id", "en")
    assert settings.database.url == "sqlite:///var/sapa.db"
    assert settings.channels.webchat is not None and settings.channels.webchat.enabled


def test_database_url_comes_from_the_environment():
    settings = load_settings(ROOT / "config.yml", environ={"DATABASE_URL": "postgresql+psycopg://u@h/db"})
    assert settings.database.url == "postgresql+psycopg://u@h/db"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d["nlu"].update(confidence_threshold=1.5),
         "nlu.confidence_threshold: Input should be less than or equal to 1 (got 1.5). "
         "Fix: use a number between 0 and 1; below it the intent is out_of_scope."),
        (lambda d: d["nlu"].update(backend="spacy"), "nlu.backend: Input should be 'embedded' or 'rasa'"),
        (lambda d: d["nlu"]["rasa"].update(url="127.0.0.1:5005"),
         "nlu.rasa.url: Value error, an http:// or https:// URL such as http://127.0.0.1:5005"),
        (lambda d: d["company"].update(timezone="Asia/Jakartaa"),
         "company.timezone: Value error, unknown time zone 'Asia/Jakartaa'"),
        (lambda d: d["server"].update(prot=8000), "server.prot: Extra inputs are not permitted"),
        (lambda d: d["templates"]["greeting"].pop("en"), "templates.greeting.en is missing (add the en text)"),
        (lambda d: d["templates"].pop("fallback"), "templates.fallback is missing"),
        (lambda d: d["templates"]["greeting"].update(id="Halo {{ name "), "templates.greeting.id does not parse"),
        (lambda d: d.update(default_language="en", languages=["id"]), "default_language 'en' is not in languages"),
        (lambda d: d["database"].update(url="mysql://x"), "only sqlite and postgresql databases are supported"),
    ],
)
def test_bad_config_names_the_key_and_the_fix(tmp_path, change, message):
    path = write_config(tmp_path, change)
    with pytest.raises(ConfigError) as raised:
        load_settings(path, environ={})
    assert message in str(raised.value)
    assert str(path) in str(raised.value)


def test_unknown_key_error_says_how_to_fix_it(tmp_path):
    path = write_config(tmp_path, lambda d: d["server"].update(prot=8000))
    with pytest.raises(ConfigError, match="Fix: remove it or correct its spelling"):
        load_settings(path, environ={})


def test_missing_file_and_broken_yaml_are_explained(tmp_path):
    with pytest.raises(ConfigError, match="not found. Fix: run from the project folder"):
        load_settings(tmp_path / "nope.yml", environ={})
    broken = tmp_path / "broken.yml"
    broken.write_text("company: [unclosed\n")
    with pytest.raises(ConfigError, match="is not valid YAML"):
        load_settings(broken, environ={})


def test_sapa_serve_stops_on_a_bad_config(tmp_path):
    path = write_config(tmp_path, lambda d: d["server"].update(port=99999))
    result = subprocess.run(
        [sys.executable, "-m", "bot.cli", "--config", str(path), "serve"],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )
    assert result.returncode == 2
    assert "server.port: Input should be less than or equal to 65535" in result.stderr


def test_sapa_serve_refuses_an_unmigrated_database(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "bot.cli", "--config", str(ROOT / "config.yml"), "serve"],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
        env={"DATABASE_URL": f"sqlite:///{tmp_path}/fresh.db", "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 2
    assert "Run `sapa db upgrade` first" in result.stderr


# --- ${NAME:-default}: a config follows what differs per run (issue 14, point 6) ------------------------------------

LOCAL_SECRETS = {"TELEGRAM_BOT_TOKEN": "123456:local-fake", "TELEGRAM_WEBHOOK_SECRET": "local-secret",
                 "TWILIO_ACCOUNT_SID": "AC" + "0" * 32, "TWILIO_AUTH_TOKEN": "local-auth-token",
                 "SLACK_BOT_TOKEN": "xoxb-local-fake", "SLACK_SIGNING_SECRET": "local-signing-secret"}


def test_a_value_may_name_an_environment_variable_with_a_default(tmp_path):
    path = tmp_path / "config.port.yml"
    path.write_text(f"extends: {ROOT / 'config.yml'}\n"
                    "server:\n  port: ${PORT_UNDER_TEST:-8123}\n  public_base_url: http://127.0.0.1:${PORT_UNDER_TEST:-8123}\n"
                    "company:\n  name: ${COMPANY_UNDER_TEST:-PT Contoh} (${COMPANY_UNDER_TEST:-x})\n")
    settings = load_settings(path, environ={})
    assert settings.server.port == 8123  # the whole value: a number, as if written 8123
    assert settings.server.public_base_url == "http://127.0.0.1:8123"
    assert settings.company.name == "PT Contoh (x)"
    settings = load_settings(path, environ={"PORT_UNDER_TEST": "8010", "COMPANY_UNDER_TEST": "Toko"})
    assert (settings.server.port, settings.server.public_base_url) == (8010, "http://127.0.0.1:8010")
    assert settings.company.name == "Toko (Toko)"
    with pytest.raises(ConfigError, match=r"server.port: Input should be a valid integer.*'eighty'"):
        load_settings(path, environ={"PORT_UNDER_TEST": "eighty"})


def test_a_variable_without_a_default_must_be_set(tmp_path):
    path = tmp_path / "config.bare.yml"
    path.write_text(f"extends: {ROOT / 'config.yml'}\nserver:\n  port: ${{PORT_UNDER_TEST}}\n")
    with pytest.raises(ConfigError) as raised:
        load_settings(path, environ={})
    assert ("server.port: uses ${PORT_UNDER_TEST}, which is not set. Fix: set the PORT_UNDER_TEST environment "
            "variable, or write ${PORT_UNDER_TEST:-DEFAULT}.") in str(raised.value)
    assert load_settings(path, environ={"PORT_UNDER_TEST": "9000"}).server.port == 9000


def test_a_secret_cannot_be_smuggled_into_a_file_through_a_variable(tmp_path):
    path = tmp_path / "config.secret.yml"
    path.write_text(f"extends: {ROOT / 'config.yml'}\nserver:\n  api_token: ${{SAPA_API_TOKEN}}\n")
    with pytest.raises(ConfigError, match="server.api_token: secrets must not be in the file"):
        load_settings(path, environ={"SAPA_API_TOKEN": "t"})


@pytest.mark.parametrize("name", ["config.local-channels.yml", "config.walkthrough.yml"])
def test_the_local_configs_follow_sapas_port_and_the_fake_providers_port(name):
    default = load_settings(ROOT / name, environ=LOCAL_SECRETS)
    moved = load_settings(ROOT / name, environ={**LOCAL_SECRETS, "SAPA_PORT": "8010", "SAPA_FAKE_PORT": "8199"})
    assert (default.server.port, moved.server.port) == (8000, 8010)
    settings_lines = [line for line in (ROOT / name).read_text().splitlines() if not line.lstrip().startswith("#")]
    assert not [line for line in settings_lines if ":8000" in line or ":8099" in line]  # no hard-coded port left
    if name == "config.local-channels.yml":
        assert (default.server.public_base_url, moved.server.public_base_url) == ("http://127.0.0.1:8000",
                                                                                  "http://127.0.0.1:8010")
        for section in (moved.channels.telegram, moved.channels.sms, moved.channels.whatsapp):
            assert str(section.api_base_url).startswith("http://127.0.0.1:8199")
        assert default.channels.telegram.api_base_url == "http://127.0.0.1:8099/bot"
    else:
        assert (default.slack.api_base_url, moved.slack.api_base_url) == ("http://127.0.0.1:8099/api/",
                                                                          "http://127.0.0.1:8199/api/")
