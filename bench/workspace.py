"""What both benchmarks share: the `sapa` command and a migrated throwaway work folder."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def sapa_command() -> list[str]:
    """The `sapa` console script of this interpreter's environment, else `python -m bot.cli`."""
    script = Path(sys.executable).parent / "sapa"
    return [str(script)] if script.is_file() else [sys.executable, "-m", "bot.cli"]


def prepare_sapa(workdir: Path, database_url: str, *, reuse_nlu: bool = False) -> dict[str, str]:
    """Copy config.yml into workdir, migrate the database, and return the environment to run sapa in."""
    shutil.copy(ROOT / "config.yml", workdir / "config.yml")
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "SAPA_CONFIG": str(workdir / "config.yml"),
        "PYTHONUNBUFFERED": "1",
    }
    upgrade = subprocess.run(
        [*sapa_command(), "--log-level", "WARNING", "db", "upgrade"],
        cwd=workdir, env=env, capture_output=True, text=True, timeout=300,
    )
    if upgrade.returncode != 0:
        raise RuntimeError(f"`sapa db upgrade` failed ({upgrade.returncode}):\n{upgrade.stdout}\n{upgrade.stderr}")
    nlu_cache = ROOT / "var" / "nlu"
    if reuse_nlu and nlu_cache.is_dir():  # a trained model in the checkout saves training at start-up
        shutil.copytree(nlu_cache, workdir / "var" / "nlu")
    return env
