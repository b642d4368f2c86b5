"""The Rasa backend against a real Rasa 3.6 server trained on nlu/data, and against broken ones.

The real server comes from the session fixture `rasa_url` (trained once per data fingerprint). Outages
are real too: a port nobody listens on, and a local HTTP server that answers 500 or nonsense.
"""

from __future__ import annotations

import json
import logging
import subprocess
import threading
import time
from collections.abc import Iterator
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bot.app import build
from bot.config import Settings
from nlu.embedded import EmbeddedInterpreter
from nlu.rasa_backend import RasaInterpreter
from tests.support.server import free_port, sapa_command

ROOT = Path(__file__).resolve().parents[2]
TESTSET = ROOT / "tests" / "nlu" / "testset.jsonl"
NOW = datetime(2026, 11, 23, 10, 0, tzinfo=ZoneInfo("Asia/Jakarta"))


@pytest.fixture
def rasa(rasa_url: str, interpreter: EmbeddedInterpreter) -> RasaInterpreter:
    return RasaInterpreter(rasa_url, interpreter, threshold=0.35, timeout_s=10.0)


@pytest.mark.parametrize(
    ("text", "intent"),
    [
        ("halo kak selamat pagi", "greet"),
        ("barang yg dateng rusak, kecewa bgt", "complaint"),
        ("where is my order?", "check_status"),
        ("saya mau bicara dengan petugas", "talk_to_agent"),
        ("tolong hapus data pribadi saya", "delete_data"),
        ("makasih ya min", "thanks"),
    ],
)
def test_rasa_server_understands_clear_messages(rasa: RasaInterpreter, text: str, intent: str) -> None:
    answer = rasa.interpret(text, None, NOW)
    assert answer.backend == "rasa"
    assert answer.intent == intent
    assert 0.0 < answer.confidence <= 1.0
    assert answer.ranking and answer.ranking[0][0] == intent


def test_rasa_entities_come_back_normalised(rasa: RasaInterpreter) -> None:
    answer = rasa.interpret("refund 1,5jt utk pesanan INV-2026-00123 blm masuk, kirim ke budi@Contoh.co.id besok", None,
                            NOW)
    values = {e.entity: e.value for e in answer.entities}
    assert values["amount"] == 1_500_000
    assert values["order_id"] == "INV-2026-00123"
    assert values["email"] == "budi@contoh.co.id"
    assert values["date"] == "2026-11-24"
    assert answer.backend == "rasa"


@pytest.mark.parametrize("text", ["", "   ", "asdkjh qwpoeiru zmxncb", "😀😀😀🙏", "kirim " * 2000])
def test_rasa_backend_never_crashes_on_odd_text(rasa: RasaInterpreter, text: str) -> None:
    answer = rasa.interpret(text)
    assert answer.backend == "rasa"
    if not text.strip():
        assert answer.intent == "out_of_scope"


def test_rasa_fallback_intent_is_out_of_scope(rasa: RasaInterpreter) -> None:
    # Rasa's FallbackClassifier (threshold in nlu/rasa/config.yml) answers nlu_fallback for mash.
    answers = [rasa.interpret(t).intent for t in ("xkcd qwzv plmokn", "jfjfjfjf kdkdkd", "zzzxxxccc vvvbbb")]
    assert answers.count("out_of_scope") >= 2, answers


def test_dead_rasa_falls_back_to_embedded_and_says_so_once(
    interpreter: EmbeddedInterpreter, caplog: pytest.LogCaptureFixture
) -> None:
    rasa = RasaInterpreter(f"http://127.0.0.1:{free_port()}", interpreter, 0.35, timeout_s=1.0, retry_after_s=60)
    with caplog.at_level(logging.WARNING, logger="nlu.rasa_backend"):
        first = rasa.interpret("barang yg dateng rusak, kecewa bgt")
        second = rasa.interpret("where is my order INV-2026-00999?")
    assert (first.intent, first.backend) == ("complaint", "embedded (rasa down)")
    assert (second.intent, second.backend) == ("check_status", "embedded (rasa down)")
    order = second.entity("order_id")
    assert order is not None and order.value == "INV-2026-00999"
    warnings = [r.getMessage() for r in caplog.records if "Rasa NLU" in r.getMessage()]
    assert len(warnings) == 1 and "embedded backend answers" in warnings[0]


class _BrokenRasa(BaseHTTPRequestHandler):
    replies: list[tuple[int, bytes]] = []
    requests = 0

    def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
        type(self).requests += 1
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        status, body = self.replies.pop(0) if self.replies else (500, b"")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def broken_rasa() -> Iterator[tuple[str, type[_BrokenRasa]]]:
    class Handler(_BrokenRasa):
        replies = []
        requests = 0

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", Handler
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize(
    "reply",
    [(500, b'{"error": "boom"}'), (200, b"not json"), (200, b'{"text": "x"}'), (200, b'["a list"]')],
    ids=["500", "not-json", "no-intent", "wrong-shape"],
)
def test_rasa_answering_nonsense_falls_back(broken_rasa, interpreter, reply) -> None:
    url, handler = broken_rasa
    handler.replies.append(reply)
    answer = RasaInterpreter(url, interpreter, 0.35, timeout_s=2.0).interpret("makasih ya min")
    assert (answer.intent, answer.backend) == ("thanks", "embedded (rasa down)")


def test_failed_rasa_is_not_asked_again_within_the_retry_interval(broken_rasa, interpreter) -> None:
    url, handler = broken_rasa
    handler.replies.append((500, b""))
    rasa = RasaInterpreter(url, interpreter, 0.35, timeout_s=2.0, retry_after_s=60)
    answers = [rasa.interpret(text) for text in ("makasih", "halo kak", "mau komplain barang rusak")]
    assert [a.backend for a in answers] == ["embedded (rasa down)"] * 3
    assert handler.requests == 1  # a dead server costs one attempt per interval, not one per message


def test_rasa_comes_back_after_retry_interval(broken_rasa, interpreter, caplog) -> None:
    url, handler = broken_rasa
    body = {"intent": {"name": "thanks", "confidence": 0.91}, "entities": [],
            "intent_ranking": [{"name": "thanks", "confidence": 0.91}]}
    handler.replies += [(503, b""), (200, json.dumps(body).encode())]
    rasa = RasaInterpreter(url, interpreter, 0.35, timeout_s=2.0, retry_after_s=0.2)
    with caplog.at_level(logging.INFO, logger="nlu.rasa_backend"):
        assert rasa.interpret("makasih").backend == "embedded (rasa down)"
        time.sleep(0.3)
        back = rasa.interpret("makasih")
    assert (back.intent, back.confidence, back.backend) == ("thanks", 0.91, "rasa")
    assert any("answers again" in r.getMessage() for r in caplog.records)


def test_unknown_rasa_intent_and_low_confidence_are_out_of_scope(broken_rasa, interpreter) -> None:
    url, handler = broken_rasa
    handler.replies += [
        (200, json.dumps({"intent": {"name": "mood_great", "confidence": 0.99}, "entities": []}).encode()),
        (200, json.dumps({"intent": {"name": "complaint", "confidence": 0.2}, "entities": []}).encode()),
        (200, json.dumps({"intent": {"name": "nlu_fallback", "confidence": 0.35}, "entities": []}).encode()),
    ]
    rasa = RasaInterpreter(url, interpreter, 0.35)
    assert [rasa.interpret("x y z").intent for _ in range(3)] == ["out_of_scope"] * 3


def test_rasa_entities_are_normalised_and_merged_with_ours(broken_rasa, interpreter) -> None:
    url, handler = broken_rasa
    text = "halo, saya dgn pak Joko Susilo mau refund 250rb"
    start = text.index("Joko")
    body = {"intent": {"name": "request", "confidence": 0.8}, "intent_ranking": [],
            "entities": [
                {"entity": "person_name", "value": "Joko Susilo", "start": start, "end": start + 11},
                # Rasa's span for the amount overlaps ours: ours (with its integer value) wins.
                {"entity": "amount", "value": "250rb", "start": text.index("250"), "end": len(text)},
                {"entity": "amount", "value": "??", "start": 0, "end": 4},  # unreadable: dropped
                {"entity": "date", "start": 90, "end": 99},  # outside the text: dropped
            ]}
    handler.replies.append((200, json.dumps(body).encode()))
    answer = RasaInterpreter(url, interpreter, 0.35).interpret(text, None, NOW)
    assert answer.intent == "request"
    assert [(e.entity, e.value) for e in answer.entities] == [("person_name", "Joko Susilo"), ("amount", 250_000)]


def test_healthz_reports_a_rasa_outage_as_degraded(settings: Settings, clock, database) -> None:
    from fastapi.testclient import TestClient

    from bot.app import create_app
    from tests.support.webchat import WebchatUser

    dead = f"http://127.0.0.1:{free_port()}"
    rasa_settings = settings.model_copy(update={"nlu": settings.nlu.model_copy(update={
        "backend": "rasa", "rasa": settings.nlu.rasa.model_copy(update={"url": dead, "timeout_s": 1.0})})})
    sapa = build(rasa_settings, clock=clock, database=database, model_cache=ROOT / "var" / "nlu")
    try:
        with TestClient(create_app(sapa, background=False)) as client:
            health = client.get("/healthz")
            replies = WebchatUser(client, sapa).say("halo kak")
        assert replies, "the embedded backend answered while Rasa was down"
        assert health.status_code == 200
        assert health.json()["status"] == "degraded"
        assert health.json()["nlu"] == {"backend": "rasa", "rasa": {"url": dead, "up": False}}
    finally:
        sapa.stop_background()


def test_pipeline_on_the_rasa_backend_opens_a_ticket(rasa_url: str, settings: Settings, clock, database) -> None:
    from tests.support.webchat import WebchatUser

    rasa_settings = settings.model_copy(
        update={"nlu": settings.nlu.model_copy(update={"backend": "rasa", "rasa": settings.nlu.rasa.model_copy(
            update={"url": rasa_url, "timeout_s": 10.0})})}
    )
    sapa = build(rasa_settings, clock=clock, database=database, model_cache=ROOT / "var" / "nlu")
    try:
        assert isinstance(sapa.interpreter, RasaInterpreter) and not sapa.interpreter.down
        from fastapi.testclient import TestClient

        from bot.app import create_app

        with TestClient(create_app(sapa, background=False)) as client:
            user = WebchatUser(client, sapa)
            user.say("halo")
            user.say("Rina")
            replies = user.say("paket saya datang dalam keadaan rusak, saya kecewa sekali")
        assert len(replies) == 1 and "TKT-" in replies[0] and "Rina" in replies[0], replies
        with sapa.database.unit_of_work(read_only=True) as session:
            from sqlalchemy import select

            from store.models import Message
            inbound = session.execute(select(Message).where(Message.direction == "in")).scalars().all()
        assert [m.meta["nlu"]["backend"] for m in inbound] == ["rasa", "rasa", "rasa"]
    finally:
        sapa.stop_background()


def test_evaluate_cli_against_the_rasa_server(rasa_url: str, tmp_path: Path) -> None:
    config = tmp_path / "config.yml"
    config.write_text(f"extends: {ROOT / 'config.yml'}\nnlu:\n  rasa:\n    url: {rasa_url}\n    timeout_s: 10\n")
    result = subprocess.run(
        [*sapa_command(), "--config", str(config), "nlu", "evaluate", str(TESTSET), "--backend", "rasa", "--json"],
        capture_output=True, text=True, cwd=ROOT, timeout=600,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert set(report) >= {"accuracy", "macro_f1", "per_intent", "entity_f1", "ms_per_message", "n"}
    assert report["n"] == sum(1 for line in TESTSET.read_text().splitlines() if line.strip())
    assert report["backends"] == {"rasa": report["n"]}
    assert 0.5 < report["macro_f1"] <= 1.0


def test_evaluate_cli_refuses_rasa_when_no_server_answers(tmp_path: Path) -> None:
    config = tmp_path / "config.yml"
    config.write_text(f"extends: {ROOT / 'config.yml'}\nnlu:\n  rasa:\n    url: http://127.0.0.1:{free_port()}\n")
    result = subprocess.run(
        [*sapa_command(), "--config", str(config), "nlu", "evaluate", str(TESTSET), "--backend", "rasa"],
        capture_output=True, text=True, cwd=ROOT, timeout=120,
    )
    assert result.returncode != 0
    assert "no Rasa server answers" in result.stderr
