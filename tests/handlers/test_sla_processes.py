"""VIP-4.3 with two real `sapa serve` processes sharing one PostgreSQL: an unanswered VIP complaint escalates
to the supervisor at the first-response breach and to management at the resolution breach, each exactly once.

Real time, no manual clock: the VIP targets are shrunk to seconds in the config overlay, both processes run
their schedulers and outboxes, and the test only watches the database and the fake Slack.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import httpx
import psycopg
import yaml

from bot.devtools.fake_providers import FakeProviders
from tests.support.pgserver import PostgresServer
from tests.support.providers import TWILIO_TOKEN
from tests.support.server import ROOT, running_sapa, wait_for
from tests.support.slack import AGENTS, SECRETS, Slack
from tests.support.webchat import WebchatUser

FIRST_RESPONSE_S = 8
RESOLUTION_S = 16



def test_vip_4_3_two_sapa_processes_on_postgres_escalate_an_unanswered_vip_complaint_once_per_level(
    tmp_path: Path, pg_server: PostgresServer
) -> None:
    name = f"procs{os.getpid()}"
    with psycopg.connect(f"host=127.0.0.1 port={pg_server.port} user=postgres dbname=postgres",
                         autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name} TEMPLATE sapa_template")
    database_url = pg_server.url(name)
    dsn = f"host=127.0.0.1 port={pg_server.port} user=postgres dbname={name}"

    def rows(query: str) -> list[tuple[Any, ...]]:
        with psycopg.connect(dsn) as connection:
            return connection.execute(query).fetchall()

    with FakeProviders(twilio_auth_token=TWILIO_TOKEN) as fakes:
        raw = yaml.safe_load((ROOT / "config.yml").read_text())
        overlay = {
            "extends": "config.yml",
            "slack": {"enabled": True, "api_base_url": fakes.slack_base_url, "queue_channel": "C0QUEUE",
                      "vip_channel": "C0VIP", "escalation_channel": "C0ESC", "agents": AGENTS},
            "sla": {**raw["sla"], "tiers": {
                **raw["sla"]["tiers"],
                "vip": {"first_response_minutes": FIRST_RESPONSE_S / 60, "resolution_minutes": RESOLUTION_S / 60,
                        "business_hours_only": False}}},
            "scheduler": {**raw["scheduler"], "poll_interval_s": 0.3},
            "outbox": {**raw["outbox"], "poll_interval_s": 0.2},
        }
        env = {key: value for key, value in SECRETS.items() if key.startswith("SLACK")}
        workdirs = [tmp_path / "one", tmp_path / "two"]
        for workdir in workdirs:
            workdir.mkdir()
            (workdir / "sla.yml").write_text(yaml.safe_dump(overlay))
        with running_sapa(workdirs[0], config="sla.yml", env=env, database_url=database_url) as one, \
                running_sapa(workdirs[1], config="sla.yml", env=env, database_url=database_url) as two:
            try:
                http = httpx.Client(base_url=one.base_url, trust_env=False, timeout=10)
                budi = WebchatUser(http, None)
                budi.say("halo")
                budi.say("Budi")
                (customer_id,) = rows("SELECT id FROM customers")[0]
                agent = Slack(httpx.Client(base_url=two.base_url, trust_env=False, timeout=10), fakes, None, None)
                assert "VIP" in agent.command("U0AMGR", f"vip add #{customer_id} key account")["text"]

                budi.say("pesanan saya datang rusak parah, saya sangat kecewa")
                wait_for(lambda: rows("SELECT id FROM tickets"), "the ticket")
                # Both breaches pass while nobody answers; then several more scheduler polls in both processes.
                wait_for(lambda: len(rows("SELECT id FROM ticket_events WHERE kind = 'escalated'")) >= 2,
                         "both escalations", timeout_s=RESOLUTION_S + 60)
                time.sleep(3)  # ten more scheduler polls in each process: nothing may escalate again

                escalated = rows("SELECT detail FROM ticket_events WHERE kind = 'escalated' ORDER BY id")
                details = [json.loads(d) if isinstance(d, str) else d for (d,) in escalated]
                assert [(d["role"], d["level"], d["by"]) for d in details] == [
                    ("supervisor", 1, "SLA"), ("management", 2, "SLA")]
                assert rows("SELECT escalation_level FROM tickets") == [(2,)]

                def posts(level: int) -> list[dict[str, Any]]:
                    return [p for p in agent.posts("C0ESC") if f"Escalation level {level}" in p.get("text", "")]

                wait_for(lambda: posts(1) and posts(2), "the escalation posts in Slack")
                time.sleep(1)
                assert len(posts(1)) == 1 and "<@U0SUPER>" in json.dumps(posts(1)[0]["blocks"])
                assert len(posts(2)) == 1 and "<@U0BOSS>" in json.dumps(posts(2)[0]["blocks"])
                checks = rows("SELECT payload, status, claimed_by FROM tasks WHERE kind = 'sla.check'")
                stages = sorted((json.loads(p) if isinstance(p, str) else p)["stage"] for p, _, _ in checks)
                assert stages == ["first_response", "resolution", "warn"]
                assert {status for _, status, _ in checks} == {"done"}
                # The customer is told twice (once per level), not four times.
                told = [m["text"] for m in budi.history() if m["text"].startswith("Permasalahan Anda kami teruskan")]
                assert len(told) == 2
            except AssertionError as failure:  # what the two servers logged is the evidence
                raise AssertionError(f"{failure}\n--- one ---\n{one.log()[-6000:]}\n--- two ---\n"
                                     f"{two.log()[-6000:]}") from failure
