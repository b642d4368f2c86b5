"""What the benchmarks share: the `sapa` command and a migrated throwaway work folder."""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent

# Settings every benchmark that drives `sapa serve` needs: the per-address session throttle (30 a minute, a
# defence against one browser opening sessions in a loop) would refuse the 128 sessions a bench opens at once
# from 127.0.0.1. Nothing on the message path changes.
BENCH_OVERRIDES: dict[str, Any] = {
    "channels.webchat.sessions_per_minute_per_address": 100_000,
}
# One media-link key for every `sapa serve` of a bench run, as replicas behind one load balancer share one (and none
# logs that it made a key file of its own: the bench's output shows only what it measured). The caller's wins.
MEDIA_LINK_SECRET = os.environ.get("SAPA_MEDIA_LINK_SECRET") or secrets.token_hex(32)


def sapa_command() -> list[str]:
    """The `sapa` console script of this interpreter's environment, else `python -m bot.cli`."""
    script = Path(sys.executable).parent / "sapa"
    return [str(script)] if script.is_file() else [sys.executable, "-m", "bot.cli"]


def write_config(target: Path, overrides: Mapping[str, Any] | None = None) -> None:
    """config.yml of the checkout, copied to target with each dotted key (a.b.c) set to its value.

    Missing sections are created; the rest of the file is kept as it is (its comments are not)."""
    if not overrides:
        shutil.copy(ROOT / "config.yml", target)
        return
    config: dict[str, Any] = yaml.safe_load((ROOT / "config.yml").read_text(encoding="utf-8")) or {}
    for dotted, value in overrides.items():
        *sections, leaf = dotted.split(".")
        node = config
        for section in sections:
            child = node.get(section)
            if not isinstance(child, dict):
                child = node[section] = {}
            node = child
        node[leaf] = value
    target.write_text(yaml.safe_dump(config, sort_keys=False, allow_unicode=True), encoding="utf-8")


def prepare_sapa(
    workdir: Path, database_url: str, *, reuse_nlu: bool = False, overrides: Mapping[str, Any] | None = None
) -> dict[str, str]:
    """Copy config.yml into workdir (with overrides, dotted keys), migrate the database, return sapa's environment."""
    write_config(workdir / "config.yml", overrides)
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "SAPA_CONFIG": str(workdir / "config.yml"),
        "PYTHONUNBUFFERED": "1",
        "SAPA_MEDIA_LINK_SECRET": MEDIA_LINK_SECRET,
    }
    upgrade = subprocess.run(
        [*sapa_command(), "--log-level", "WARNING", "db", "upgrade"],
        cwd=workdir, env=env, capture_output=True, text=True, timeout=300,
    )
    if upgrade.returncode != 0:
        raise RuntimeError(f"`sapa db upgrade` failed ({upgrade.returncode}):\n{upgrade.stdout}\n{upgrade.stderr}")
    nlu_cache = ROOT / "var" / "nlu"
    if reuse_nlu and nlu_cache.is_dir() and not (workdir / "var" / "nlu").exists():
        # a trained model in the checkout saves training at start-up
        shutil.copytree(nlu_cache, workdir / "var" / "nlu")
    return env
