"""`sapa simulate`: a new user sees every channel work on one machine, with no accounts."""

from __future__ import annotations

import subprocess

import pytest

from bot.fake_providers import FakeProviders
from tests.support.server import ROOT, free_port, running_sapa, sapa_command

SECRETS = {
    "TELEGRAM_BOT_TOKEN": "123456:local-fake-token",
    "TELEGRAM_WEBHOOK_SECRET": "local-secret",
    "TWILIO_ACCOUNT_SID": "AC" + "0" * 32,
    "TWILIO_AUTH_TOKEN": "local-auth-token",
}


def test_simulate_drives_each_channel_through_the_real_server(tmp_path):
    try:
        fakes = FakeProviders(port=8099, twilio_auth_token=SECRETS["TWILIO_AUTH_TOKEN"]).start()
    except OSError as exc:
        pytest.fail(f"port 8099 (config.local-channels.yml's fake providers) is taken: {exc}")
    try:
        # config.local-channels.yml expects Sapa on 8000 for status callbacks; this test only needs replies.
        with running_sapa(tmp_path, configs=("config.yml", "config.local-channels.yml"),
                          config="config.local-channels.yml", env=SECRETS, port=free_port()) as server:
            for channel, text, expected in [
                ("telegram", "halo", "< Halo! Selamat datang di PT Contoh Sejahtera."),
                ("sms", "halo", "< Boleh kami tahu nama Anda?"),
                ("whatsapp", "barang saya rusak, mau komplain", "nomor tiket TKT-000001"),
            ]:
                result = subprocess.run(
                    [*sapa_command(), "simulate", channel, text, "--url", server.base_url, "--wait", "8"],
                    cwd=tmp_path, env=server.env, capture_output=True, text=True, timeout=60,
                )
                assert result.returncode == 0, result.stderr
                assert f"> {text}    [{channel}, Sapa answered HTTP 200]" in result.stdout
                assert expected in result.stdout, result.stdout + server.log()
    finally:
        fakes.stop()


def test_simulate_explains_a_channel_that_is_not_enabled(tmp_path):
    result = subprocess.run([*sapa_command(), "simulate", "telegram", "halo"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=60,
                            env={"PATH": "/usr/bin:/bin", "SAPA_CONFIG": str(ROOT / "config.yml")})
    assert result.returncode == 2
    assert "telegram is not enabled: use config.local-channels.yml" in result.stderr
