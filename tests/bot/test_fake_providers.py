"""The fake provider server answers the real Telegram, Twilio and Slack SDKs like the real services."""

from __future__ import annotations

import asyncio
import queue
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from threading import Thread
from urllib.parse import parse_qs

import httpx
import pytest
import telegram
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from telegram import InlineKeyboardButton, InlineKeyboardMarkup
from telegram.error import Forbidden, RetryAfter
from twilio.base.exceptions import TwilioRestException
from twilio.request_validator import RequestValidator
from twilio.rest import Client

from bot.devtools.fake_providers import FakeProviders, Faults, mask_phones

TG_TOKEN = "123456:ABC-fake-token"
TWILIO_SID = "AC" + "a" * 32
TWILIO_TOKEN = "twilio-test-token"
WHATSAPP_FROM = "whatsapp:+14155238886"
WHATSAPP_TO = "whatsapp:+6281234567890"


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeProviders]:
    for name in ("TWILIO_REGION", "TWILIO_EDGE", "PTB_TIMEDELTA"):
        monkeypatch.delenv(name, raising=False)
    with FakeProviders(twilio_auth_token=TWILIO_TOKEN) as server:
        yield server


@pytest.fixture
def receiver() -> Iterator[tuple[str, queue.Queue[tuple[str, dict[str, str], dict[str, str]]]]]:
    """A tiny app endpoint that stores each POST as (path, lower-cased headers, form fields)."""
    got: queue.Queue[tuple[str, dict[str, str], dict[str, str]]] = queue.Queue()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"])).decode()
            form = {key: values[0] for key, values in parse_qs(body).items()}
            got.put((self.path, {k.lower(): v for k, v in self.headers.items()}, form))
            self.send_response(204)
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/twilio/status?tenant=a", got
    server.shutdown()
    server.server_close()


def twilio_client(fake: FakeProviders, token: str = TWILIO_TOKEN) -> Client:
    client = Client(TWILIO_SID, token)
    client.api.base_url = fake.twilio_base_url
    return client


def test_telegram_get_me_and_send_message_with_inline_keyboard(fake: FakeProviders) -> None:
    keyboard = InlineKeyboardMarkup([[InlineKeyboardButton("Ya", callback_data="yes")]])

    async def scenario() -> tuple[telegram.User, telegram.Message]:
        async with telegram.Bot(TG_TOKEN, base_url=fake.telegram_base_url) as bot:  # initialize() calls getMe
            return bot.bot, await bot.send_message(chat_id=777001, text="Halo", reply_markup=keyboard)

    me, message = asyncio.run(scenario())
    assert (me.username, me.is_bot) == ("sapa_test_bot", True)
    assert (message.chat.id, message.text, message.message_id) == (777001, "Halo", 1)
    [sent] = fake.sent("telegram")
    assert sent.path == f"/bot{TG_TOKEN}/sendMessage"
    assert sent.params["chat_id"] == "777001"
    assert sent.params["reply_markup"] == {"inline_keyboard": [[{"text": "Ya", "callback_data": "yes"}]]}
    assert [r.method for r in fake.requests("telegram")] == ["getMe", "sendMessage"]


@pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")  # int retry_after, as in 22.x
def test_telegram_scripted_flood_control_and_blocked_user(fake: FakeProviders) -> None:
    fake.fail_next("telegram", 429, method="sendMessage", retry_after=7)
    fake.fail_next("telegram", 403, method="sendMessage")

    async def send(bot: telegram.Bot) -> Exception | None:
        try:
            await bot.send_message(chat_id=777001, text="Halo")
        except Exception as exc:
            return exc
        return None

    async def scenario() -> list[Exception | None]:
        async with telegram.Bot(TG_TOKEN, base_url=fake.telegram_base_url) as bot:
            return [await send(bot), await send(bot), await send(bot)]

    flood, blocked, ok = asyncio.run(scenario())
    assert isinstance(flood, RetryAfter) and flood.retry_after == 7
    assert isinstance(blocked, Forbidden) and "blocked" in blocked.message
    assert ok is None
    assert len(fake.requests("telegram", "sendMessage")) == 3
    assert len(fake.sent("telegram")) == 1  # failed attempts are recorded but were not sends


def test_twilio_create_answers_a_message_resource_and_records_the_form(fake: FakeProviders) -> None:
    message = twilio_client(fake).messages.create(to=WHATSAPP_TO, from_=WHATSAPP_FROM, body="Halo dari agen",
                                                  status_callback="https://hub.example.test/twilio/status")
    assert message.sid is not None and message.sid.startswith("SM") and len(message.sid) == 34
    assert (message.status, message.to, message.account_sid) == ("queued", WHATSAPP_TO, TWILIO_SID)
    [sent] = fake.sent("twilio")
    assert sent.path == f"/2010-04-01/Accounts/{TWILIO_SID}/Messages.json"
    assert sent.headers["authorization"].startswith("Basic ")
    assert {k: sent.params[k] for k in ("To", "From", "Body", "StatusCallback")} == {
        "To": WHATSAPP_TO, "From": WHATSAPP_FROM, "Body": "Halo dari agen",
        "StatusCallback": "https://hub.example.test/twilio/status"}


def test_twilio_rate_limit_and_wrong_token_raise_rest_exceptions(fake: FakeProviders) -> None:
    fake.fail_next("twilio", 429, retry_after=2)
    with pytest.raises(TwilioRestException) as limited:
        twilio_client(fake).messages.create(to="+6281234567890", from_="+15017122661", body="x")
    assert (limited.value.status, limited.value.code) == (429, 20429)
    with pytest.raises(TwilioRestException) as denied:
        twilio_client(fake, token="wrong").messages.create(to="+6281234567890", from_="+15017122661", body="x")
    assert (denied.value.status, denied.value.code) == (401, 20003)
    assert fake.sent("twilio") == [] and len(fake.requests("twilio")) == 2


def test_twilio_status_callback_is_signed_like_twilio(fake: FakeProviders, receiver) -> None:
    url, got = receiver
    message = twilio_client(fake).messages.create(to=WHATSAPP_TO, from_=WHATSAPP_FROM, body="Halo",
                                                  status_callback=url)
    assert message.sid is not None
    assert fake.post_twilio_status(message.sid, "failed", error_code=63016) == 204
    path, headers, form = got.get(timeout=5)
    assert path == "/twilio/status?tenant=a"
    assert headers["content-type"] == "application/x-www-form-urlencoded"
    assert RequestValidator(TWILIO_TOKEN).validate(url, form, headers["x-twilio-signature"])
    assert not RequestValidator("other-token").validate(url, form, headers["x-twilio-signature"])
    assert form["MessageSid"] == form["SmsSid"] == message.sid
    assert (form["MessageStatus"], form["ErrorCode"], form["ChannelPrefix"]) == ("failed", "63016", "whatsapp")
    assert (form["To"], form["From"], form["AccountSid"]) == (WHATSAPP_TO, WHATSAPP_FROM, TWILIO_SID)


def test_twilio_auto_status_callbacks_send_sent_then_delivered(fake: FakeProviders, receiver) -> None:
    url, got = receiver
    fake.auto_status_callbacks = True
    message = twilio_client(fake).messages.create(to="+6281234567890", from_="+15017122661", body="Halo",
                                                  status_callback=url)
    statuses = [got.get(timeout=5)[2] for _ in range(2)]
    assert [(f["MessageSid"], f["MessageStatus"]) for f in statuses] == [(message.sid, "sent"),
                                                                         (message.sid, "delivered")]
    assert "ChannelPrefix" not in statuses[0]


def test_post_twilio_status_needs_the_auth_token() -> None:
    with FakeProviders() as fake, pytest.raises(RuntimeError, match="twilio_auth_token"):
        fake.post_twilio_status("SM" + "0" * 32, "delivered")


def test_slack_post_message_and_scripted_rate_limit(fake: FakeProviders) -> None:
    client = WebClient(token="xoxb-test", base_url=fake.slack_base_url)
    assert client.auth_test()["bot_id"] == "B0SAPABOT"
    first = client.chat_postMessage(channel="C0QUEUE", text="Pelanggan baru")
    reply = client.chat_postMessage(channel="C0QUEUE", text="Balasan", thread_ts=first["ts"])
    assert float(reply["ts"]) > float(first["ts"])
    assert reply["message"]["thread_ts"] == first["ts"]
    fake.fail_next("slack", 429, method="chat.postMessage", retry_after=3)
    with pytest.raises(SlackApiError) as limited:
        client.chat_postMessage(channel="C0QUEUE", text="again")
    assert limited.value.response.status_code == 429
    assert limited.value.response["error"] == "ratelimited"
    assert limited.value.response.headers["Retry-After"] == "3"
    fake.fail_next("slack", 200)
    with pytest.raises(SlackApiError, match="channel_not_found"):
        client.users_info(user="U0AGENT")
    assert client.users_info(user="U0AGENT")["user"]["real_name"] == "Agent U0AGENT"
    assert [r.params["text"] for r in fake.sent("slack")] == ["Pelanggan baru", "Balasan"]
    assert fake.sent("slack")[0].headers["authorization"] == "Bearer xoxb-test"


def test_control_endpoints_list_script_and_clear(fake: FakeProviders) -> None:
    client = WebClient(token="xoxb-test", base_url=fake.slack_base_url)
    client.chat_postMessage(channel="C0QUEUE", text="one")
    listed = httpx.get(f"{fake.base_url}/_fake/requests", params={"provider": "slack"}, trust_env=False)
    assert listed.headers["content-type"] == "application/json"
    [first] = listed.json()["requests"]
    assert (first["index"], first["method"], first["params"]["text"]) == (0, "chat.postMessage", "one")
    script = {"provider": "slack", "status": 429, "method": "chat.postMessage", "retry_after": 2}
    assert httpx.post(f"{fake.base_url}/_fake/fail", json=script, trust_env=False).json() == {"ok": True}
    with pytest.raises(SlackApiError):
        client.chat_postMessage(channel="C0QUEUE", text="two")
    later = httpx.get(f"{fake.base_url}/_fake/requests", params={"after": 0}, trust_env=False).json()["requests"]
    assert [(r["index"], r["params"]["text"], r["status"]) for r in later] == [(1, "two", 429)]
    assert httpx.post(f"{fake.base_url}/_fake/clear", trust_env=False).json() == {"ok": True}
    assert fake.requests() == []
    bad = httpx.post(f"{fake.base_url}/_fake/fail", json={"provider": "fax", "status": 500}, trust_env=False)
    assert bad.status_code == 400


def test_malformed_and_unknown_requests_get_json_errors(fake: FakeProviders) -> None:
    def post(path: str, **kwargs: object) -> httpx.Response:
        return httpx.post(f"{fake.base_url}{path}", trust_env=False, **kwargs)  # type: ignore[arg-type]

    broken = post("/api/chat.postMessage", content=b"{not json", headers={"Content-Type": "application/json",
                                                                          "Authorization": "Bearer x"})
    assert (broken.status_code, broken.json()["ok"]) == (400, False)
    unknown = post(f"/bot{TG_TOKEN}/noSuchMethod", data={"chat_id": "1"})
    assert unknown.status_code == 404
    assert unknown.json() == {"ok": False, "error_code": 404, "description": "Not Found: method not found"}
    assert post("/nowhere").status_code == 404
    assert post(f"/bot{TG_TOKEN}/sendMessage", data={"text": "no chat"}).json()["error_code"] == 400
    assert [r.method for r in fake.requests()] == ["chat.postMessage", "noSuchMethod", "sendMessage"]
    assert fake.sent("slack") == [] and fake.sent("telegram") == []


def test_phone_numbers_are_masked_except_the_last_three_digits() -> None:
    assert mask_phones('{"To": "whatsapp:+6281234567890"}') == '{"To": "whatsapp:+**********890"}'


# --- seeded fault fractions (issue 15 item 7) ----------------------------------------------------------------


def _telegram_post(fake: FakeProviders, text: str, timeout: float = 5.0) -> httpx.Response:
    return httpx.post(f"{fake.telegram_base_url}{TG_TOKEN}/sendMessage", data={"chat_id": "777001", "text": text},
                      trust_env=False, timeout=timeout)


def test_faults_fail_a_seeded_fraction_of_sends_the_same_way_for_the_same_seed() -> None:
    def run(seed: int) -> list[tuple[str, bool]]:
        with (FakeProviders(faults=Faults(fraction=0.3, seed=seed, kinds=("500", "429", "accept_then_500"))) as fake,
              httpx.Client(base_url=f"{fake.telegram_base_url}{TG_TOKEN}/", trust_env=False) as client):
            for n in range(200):
                client.post("sendMessage", data={"chat_id": "777001", "text": f"m{n}"})
            client.post("getMe")  # not a send: never faulted
            return [(r.fault, r.delivered) for r in fake.requests("telegram")]

    first = run(7)
    assert first == run(7) and first != run(8)
    faults = [fault for fault, _ in first[:200] if fault]
    assert 40 <= len(faults) <= 80  # 30% of 200, give or take
    assert set(faults) == {"500", "429", "accept_then_500"}
    assert first[200] == ("", False)
    # The customer has every success and every accepted-then-500, nothing else.
    assert sum(delivered for _, delivered in first) == sum(fault in ("", "accept_then_500") for fault, _ in first[:200])


def test_twilio_accept_then_500_answers_an_error_but_the_message_is_delivered_and_listed() -> None:
    with FakeProviders(twilio_auth_token=TWILIO_TOKEN, faults=Faults(fraction=1.0, kinds=("accept_then_500",))) as fake:
        client = twilio_client(fake)
        with pytest.raises(TwilioRestException) as failed:
            client.messages.create(to=WHATSAPP_TO, from_=WHATSAPP_FROM, body="Pesanan Anda siap")
        assert failed.value.status == 500
        [delivered] = fake.sent("twilio")
        assert (delivered.fault, delivered.params["Body"]) == ("accept_then_500", "Pesanan Anda siap")
        [listed] = client.messages.list(to=WHATSAPP_TO, limit=20)  # GET Messages.json is never faulted
        assert (listed.body, listed.to) == ("Pesanan Anda siap", WHATSAPP_TO) and listed.sid.startswith("SM")


def test_a_timeout_holds_the_answer_past_the_client_and_may_or_may_not_have_taken_the_message() -> None:
    with FakeProviders(faults=Faults(fraction=1.0, seed=3, kinds=("timeout",), hold_s=0.5)) as fake:
        for n in range(6):
            with pytest.raises(httpx.ReadTimeout):
                _telegram_post(fake, f"m{n}", timeout=0.1)
        recorded = fake.requests("telegram", "sendMessage")
        assert {r.fault for r in recorded} == {"timeout"}
        taken = [r.params["text"] for r in recorded if r.delivered]
        assert 0 < len(taken) < 6  # a seeded coin for each
        assert [r.params["text"] for r in fake.sent("telegram")] == taken
        fake.set_faults(None)
        assert _telegram_post(fake, "after").json()["ok"] is True  # the server is fine after the held answers


def test_accept_then_drop_closes_the_connection_without_an_answer() -> None:
    with FakeProviders(faults=Faults(fraction=1.0, kinds=("accept_then_drop",), providers=("slack",))) as fake:
        with pytest.raises(httpx.RemoteProtocolError):
            httpx.post(f"{fake.slack_base_url}chat.postMessage", json={"channel": "C0QUEUE", "text": "kartu"},
                       headers={"Authorization": "Bearer xoxb-test"}, trust_env=False)
        assert [r.params["text"] for r in fake.sent("slack")] == ["kartu"]
        assert _telegram_post(fake, "not faulted").json()["ok"] is True  # only the providers named


def test_faults_are_set_over_the_control_endpoint_and_fail_next_goes_first(fake: FakeProviders) -> None:
    spec = {"fraction": 1.0, "seed": 1, "kinds": ["500"], "providers": ["telegram"]}
    assert httpx.post(f"{fake.base_url}/_fake/faults", json=spec, trust_env=False).json() == {"ok": True}
    fake.fail_next("telegram", 403, method="sendMessage")
    assert _telegram_post(fake, "a").status_code == 403  # scripted first
    assert _telegram_post(fake, "b").status_code == 500
    listed = httpx.get(f"{fake.base_url}/_fake/requests", trust_env=False).json()["requests"]
    assert [(r["status"], r["fault"], r["delivered"]) for r in listed] == [(403, "", False), (500, "500", False)]
    assert httpx.post(f"{fake.base_url}/_fake/faults", json={"fraction": 0}, trust_env=False).json()["ok"]
    assert _telegram_post(fake, "c").status_code == 200
    bad = httpx.post(f"{fake.base_url}/_fake/faults", json={"fraction": 0.5, "kinds": ["meteor"]}, trust_env=False)
    assert bad.status_code == 400
