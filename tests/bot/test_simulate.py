"""`sapa simulate`: a new user sees every channel work on one machine, with no accounts."""

from __future__ import annotations

import re
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from bot.devtools.fake_providers import FakeProviders
from tests.support.server import ROOT, SapaServer, free_port, running_sapa, sapa_command

SECRETS = {
    "TELEGRAM_BOT_TOKEN": "123456:local-fake-token",
    "TELEGRAM_WEBHOOK_SECRET": "local-secret",
    "TWILIO_ACCOUNT_SID": "AC" + "0" * 32,
    "TWILIO_AUTH_TOKEN": "local-auth-token",
}


def test_simulate_drives_each_channel_through_the_real_server(tmp_path):
    """The README's "Trying the channels locally", off the default ports: with SAPA_PORT and SAPA_FAKE_PORT set,
    config.local-channels.yml, `sapa serve` and `sapa simulate` (no --url, no --fake) all follow them."""
    fake_port, sapa_port = free_port(), free_port()
    fakes = FakeProviders(port=fake_port, twilio_auth_token=SECRETS["TWILIO_AUTH_TOKEN"]).start()
    ports = {"SAPA_PORT": str(sapa_port), "SAPA_FAKE_PORT": str(fake_port)}
    try:
        with running_sapa(tmp_path, configs=("config.yml", "config.local-channels.yml"),
                          config="config.local-channels.yml", env={**SECRETS, **ports}, port=sapa_port) as server:
            for channel, text, expected in [
                ("telegram", "halo", "< Halo! Selamat datang di PT Contoh Sejahtera."),
                ("sms", "halo", "< Boleh kami tahu nama Anda?"),
                ("whatsapp", "barang saya rusak, mau komplain", "nomor tiket TKT-000001"),
            ]:
                result = subprocess.run(
                    [*sapa_command(), "simulate", channel, text, "--wait", "8"],
                    cwd=tmp_path, env=server.env, capture_output=True, text=True, timeout=60,
                )
                assert result.returncode == 0, result.stderr
                assert f"> {text}    [{channel}, Sapa answered HTTP 200]" in result.stdout
                assert expected in result.stdout, result.stdout + server.log()
            # Sapa's public URL followed the port too: Twilio is told to post status callbacks to this server.
            callbacks = {r.params.get("StatusCallback") for r in fakes.sent("twilio")}
            assert callbacks == {f"http://127.0.0.1:{sapa_port}/webhooks/twilio/status"}, callbacks
    finally:
        fakes.stop()


def test_simulate_explains_a_channel_that_is_not_enabled(tmp_path):
    result = subprocess.run([*sapa_command(), "simulate", "telegram", "halo"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=60,
                            env={"PATH": "/usr/bin:/bin", "SAPA_CONFIG": str(ROOT / "config.yml")})
    assert result.returncode == 2
    assert "telegram is not enabled: use config.local-channels.yml" in result.stderr


WALKTHROUGH_SECRETS = {"SLACK_BOT_TOKEN": "xoxb-local-fake", "SLACK_SIGNING_SECRET": "local-signing-secret"}


@contextmanager
def walkthrough_sapa(workdir: Path, fakes: FakeProviders) -> Iterator[SapaServer]:
    """config.walkthrough.yml as the README runs it, on free ports (8000 and 8099 may be busy): the file follows
    SAPA_FAKE_PORT to the fake Slack, as it does for a reader who exports it."""
    port, fake_port = free_port(), fakes.base_url.rsplit(":", 1)[1]
    with running_sapa(workdir, configs=("config.yml", "config.walkthrough.yml"), config="config.walkthrough.yml",
                      env={**WALKTHROUGH_SECRETS, "SAPA_PORT": str(port), "SAPA_FAKE_PORT": fake_port},
                      port=port) as server:
        yield server


def _say(client: httpx.Client, server: SapaServer, session: str, text: str, payload: str | None = None) -> list[str]:
    body = {"session_id": session, "client_message_id": uuid.uuid4().hex, "text": text}
    if payload:
        body["payload"] = payload
    response = client.post(f"{server.base_url}/api/webchat/messages", json=body)
    assert response.status_code == 200, response.text
    return [reply["text"] for reply in response.json()["replies"]]


def _history(client: httpx.Client, server: SapaServer, session: str) -> list[tuple[str, str | None, str]]:
    messages = client.get(f"{server.base_url}/api/webchat/sessions/{session}/messages").json()["messages"]
    return [(m["sender"], m["agent_name"], m["text"]) for m in messages]


def _simulate(server: SapaServer, *args: str) -> subprocess.CompletedProcess[str]:
    """As the README types it: no --url, the config (SAPA_PORT) says where Sapa is."""
    return subprocess.run([*sapa_command(), "simulate", *args, "--wait", "8"],
                          cwd=server.workdir, env=server.env, capture_output=True, text=True, timeout=60)


def test_simulate_agent_reply_and_resolve_reach_the_web_chat_customer(tmp_path):
    """The README walkthrough: a web chat complaint, an agent's reply and Resolve from the simulated Slack desk."""
    fakes = FakeProviders().start()
    try:
        with walkthrough_sapa(tmp_path, fakes) as server, httpx.Client(trust_env=False, timeout=30) as client:
            session = client.post(f"{server.base_url}/api/webchat/sessions").json()["session_id"]
            _say(client, server, session, "halo")
            _say(client, server, session, "Budi")
            replies = _say(client, server, session, "barang saya datang dalam keadaan rusak, saya mau komplain")
            assert any("nomor tiket TKT-000001" in reply for reply in replies), replies

            reply = _simulate(server, "agent-reply", "TKT-000001", "Halo Budi, saya Rina. Barang pengganti kami kirim "
                              "besok.", "--agent", "U0RINA")
            assert reply.returncode == 0, reply.stderr + server.log()
            assert "[Slack request, Sapa answered HTTP 200]" in reply.stdout
            assert ("< to the customer: Halo Budi, saya Rina. Barang pengganti kami kirim besok."
                    in reply.stdout), reply.stdout + server.log()

            resolve = _simulate(server, "agent-resolve", "TKT-000001", "--agent", "U0RINA")
            assert resolve.returncode == 0, resolve.stderr + server.log()
            assert "< in the card's thread: ✅ Resolved by Rina" in resolve.stdout, resolve.stdout
            assert "conversation 1 is now closed" in resolve.stdout

            resolved = ("Permasalahan Anda telah kami selesaikan (tiket TKT-000001). Terima kasih atas kesabaran "
                        "Anda. Jika masih ada kendala, silakan balas pesan ini.")
            history = _history(client, server, session)
            for _ in range(20):  # the outbox delivers web chat messages by marking them sent; poll briefly
                if ("agent", "Rina", resolved) in history:
                    break
                time.sleep(0.25)
                history = _history(client, server, session)
            assert ("agent", "Rina", "Halo Budi, saya Rina. Barang pengganti kami kirim besok.") in history, history
            assert ("agent", "Rina", resolved) in history, history
            assert history.index(("agent", "Rina", resolved)) == len(history) - 1

            posts = [r.params for r in fakes.sent("slack")]
            card = re.search(r"card ts (\d+\.\d+)\)", resolve.stdout)
            assert card, resolve.stdout
            card_ts = card.group(1)
            assert any(p.get("thread_ts") == card_ts and p.get("text") == "✅ Resolved by Rina" for p in posts), posts
    finally:
        fakes.stop()


def test_simulate_agent_reply_by_a_stranger_reaches_nobody(tmp_path):
    fakes = FakeProviders().start()
    try:
        with walkthrough_sapa(tmp_path, fakes) as server, httpx.Client(trust_env=False, timeout=30) as client:
            session = client.post(f"{server.base_url}/api/webchat/sessions").json()["session_id"]
            _say(client, server, session, "halo")
            _say(client, server, session, "Budi")
            _say(client, server, session, "barang saya datang dalam keadaan rusak, saya mau komplain")
            reply = _simulate(server, "agent-reply", "TKT-000001", "saya bukan agen", "--agent", "U0NOBODY")
            assert reply.returncode == 0, reply.stderr
            assert ("< in the card's thread: ⚠️ <@U0NOBODY> is not a registered Sapa agent: nothing was sent to "
                    "the customer.") in reply.stdout, reply.stdout
            assert "< to the customer" not in reply.stdout
            assert all(text != "saya bukan agen" for _, _, text in _history(client, server, session))

            wrong = _simulate(server, "agent-resolve", "1")
            assert wrong.returncode == 0, wrong.stderr  # default agent: the first of slack.agents (Rina)
            assert "> U0RINA pressed Resolve on the card of conversation 1 (card ts" in wrong.stdout
    finally:
        fakes.stop()


def test_simulate_agent_commands_explain_a_missing_ticket_and_a_disabled_desk(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "DATABASE_URL": f"sqlite:///{tmp_path / 'sapa.db'}"}
    upgrade = subprocess.run([*sapa_command(), "--config", str(ROOT / "config.yml"), "db", "upgrade"],
                             cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert upgrade.returncode == 0, upgrade.stderr
    disabled = subprocess.run([*sapa_command(), "--config", str(ROOT / "config.yml"), "simulate", "agent-resolve",
                               "TKT-000001", "--agent", "U0RINA"],
                              cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert disabled.returncode == 2
    assert "slack is not enabled: use config.walkthrough.yml" in disabled.stderr
    missing = subprocess.run([*sapa_command(), "--config", str(ROOT / "config.walkthrough.yml"), "simulate",
                              "agent-reply", "TKT-000007", "halo"],
                             cwd=tmp_path, env={**env, **WALKTHROUGH_SECRETS}, capture_output=True, text=True,
                             timeout=60)
    assert missing.returncode == 2
    assert "no ticket TKT-000007 with a conversation" in missing.stderr
