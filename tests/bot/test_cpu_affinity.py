"""`sapa serve --cpu N` / `server.cpu`: the whole server process on one core (bot/cpu_affinity.py), or a clear
refusal."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import httpx
import pytest
import yaml

from bot.cpu_affinity import _ranges
from tests.support.server import ROOT, free_port, running_sapa, sapa_command


def threads_cpus(pid: int) -> dict[str, str]:
    """Each thread of the process (its id) with the CPUs it may run on, as Linux lists them."""
    found = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        status = (task / "status").read_text()
        found[task.name] = status.split("Cpus_allowed_list:")[1].split()[0]
    return found


def test_cpu_lists_are_written_the_way_linux_writes_them():
    assert _ranges({0}) == "0"
    assert _ranges({0, 1, 2, 5}) == "0-2,5"
    assert _ranges({3, 1, 7, 8}) == "1,3,7-8"


def test_a_server_kept_on_one_core_has_every_thread_there_and_answers(tmp_path):
    if not hasattr(os, "sched_getaffinity") or len(os.sched_getaffinity(0)) < 2:
        pytest.skip("LOUD SKIP: pinning can only be told apart from no pinning on a machine with two or more CPUs")
    cpu = max(os.sched_getaffinity(0))  # not simply CPU 0
    with running_sapa(tmp_path, serve_args=("--cpu", str(cpu))) as server, \
            httpx.Client(base_url=server.base_url, trust_env=False, timeout=30) as client:
        session = client.post("/api/webchat/sessions", json={"language": "id"}).json()["session_id"]
        answer = client.post("/api/webchat/messages", json={"session_id": session, "client_message_id": "m1",
                                                            "text": "halo"})
        assert answer.status_code == 200 and answer.json()["replies"], answer.text
        assert server.process is not None
        threads = threads_cpus(server.process.pid)
        # The event loop, the request thread that ran the message, the outbox and the scheduler at least.
        assert len(threads) >= 4, threads
        assert set(threads.values()) == {str(cpu)}, threads
        assert f"server pinned to CPU {cpu}" in server.log()


def test_a_configured_core_the_machine_does_not_offer_stops_the_server_with_the_reason(tmp_path):
    if not hasattr(os, "sched_getaffinity"):
        pytest.skip("LOUD SKIP: CPU affinity is Linux's; this machine has none to refuse")
    config = yaml.safe_load((ROOT / "config.yml").read_text())
    missing = max(os.sched_getaffinity(0)) + 1
    config["server"]["cpu"] = missing
    (tmp_path / "config.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'sapa.db'}",
           "SAPA_CONFIG": str(tmp_path / "config.yml")}
    done = subprocess.run([*sapa_command(), "serve", "--host", "127.0.0.1", "--port", str(port)], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stdout + done.stderr
    assert f"cannot keep the server on CPU {missing}: CPU {missing} is not one this process may use (allowed: " \
           in done.stderr
    with pytest.raises(httpx.ConnectError):  # it never listened
        httpx.get(f"http://127.0.0.1:{port}/healthz", trust_env=False, timeout=2)
