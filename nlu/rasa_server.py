"""Create, train and start a Rasa Open Source server for the Rasa backend (tests, bench, `sapa nlu rasa`).

Rasa 3.6 runs under Python 3.10 in an environment of its own (`nlu/rasa/setup.sh`), so Sapa only ever
talks to it over HTTP. The model is trained from the same `nlu/data/*.yml` as the embedded backend
and cached by a fingerprint of that data and the pipeline, so a changed example retrains it.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from nlu.training_data import DEFAULT_DATA_DIR, data_files, data_fingerprint

log = logging.getLogger(__name__)
RASA_DIR = Path(__file__).parent / "rasa"
PIPELINE = RASA_DIR / "config.yml"
SETUP_SCRIPT = RASA_DIR / "setup.sh"


class RasaUnavailable(RuntimeError):
    """The Rasa environment cannot be created, trained or started; the message says why and what to do."""


def rasa_env() -> dict[str, str]:
    # Rasa phones home with telemetry and TensorFlow is chatty; neither belongs in our logs or network.
    env = dict(os.environ, RASA_TELEMETRY_ENABLED="false", TF_CPP_MIN_LOG_LEVEL="2", PYTHONWARNINGS="ignore")
    env.pop("PYTHONPATH", None)
    return env


def find_venv() -> Path | None:
    """The Rasa environment setup.sh made, if it exists (it never installs anything)."""
    explicit = os.environ.get("SAPA_RASA_VENV")
    if explicit:
        return Path(explicit) if (Path(explicit) / "bin" / "rasa").exists() else None
    digest = hashlib.sha256((RASA_DIR / "requirements.txt").read_bytes()).hexdigest()[:12]
    venv = Path.home() / ".cache" / "sapa" / f"rasa-{digest}"
    return venv if (venv / ".sapa-installed").exists() else None


def setup_venv() -> Path:
    """Run nlu/rasa/setup.sh (idempotent) and return the environment it made."""
    result = subprocess.run(["bash", str(SETUP_SCRIPT)], capture_output=True, text=True)
    if result.returncode != 0:
        raise RasaUnavailable(f"nlu/rasa/setup.sh failed: {result.stderr.strip()[-2000:]}")
    return Path(result.stdout.strip().splitlines()[-1])


def model_fingerprint(data_dir: Path = DEFAULT_DATA_DIR) -> str:
    digest = hashlib.sha256(data_fingerprint(data_dir).encode())
    digest.update(PIPELINE.read_bytes())
    digest.update((RASA_DIR / "requirements.txt").read_bytes())
    return digest.hexdigest()[:16]


@dataclass(frozen=True)
class TrainedRasaModel:
    path: Path
    seconds: float  # wall time of `rasa train nlu`; 0.0 when the cached model was reused


def train(venv: Path, out_dir: Path, data_dir: Path = DEFAULT_DATA_DIR, force: bool = False) -> TrainedRasaModel:
    """`rasa train nlu` on our data and pipeline; reuses the model already trained on the same inputs."""
    name = f"sapa-nlu-{model_fingerprint(data_dir)}"
    model = out_dir / f"{name}.tar.gz"
    if model.exists() and not force:
        return TrainedRasaModel(model, 0.0)
    out_dir.mkdir(parents=True, exist_ok=True)
    # Rasa reads every file in the folder it is given; hand it only the NLU files.
    staging = out_dir / f"{name}-data"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    for path in data_files(data_dir):
        shutil.copy(path, staging / path.name)
    command = [str(venv / "bin" / "rasa"), "train", "nlu", "--config", str(PIPELINE), "--nlu", str(staging),
               "--out", str(out_dir), "--fixed-model-name", name]
    log.info("training Rasa: %s", " ".join(command))
    started = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, env=rasa_env(), cwd=out_dir)
    seconds = time.perf_counter() - started
    shutil.rmtree(staging, ignore_errors=True)
    if result.returncode != 0 or not model.exists():
        tail = (result.stdout + result.stderr).strip()[-3000:]
        raise RasaUnavailable(f"rasa train nlu failed (exit {result.returncode}):\n{tail}")
    return TrainedRasaModel(model, seconds)


def is_up(url: str, timeout_s: float = 1.0) -> bool:
    try:
        with urllib.request.urlopen(f"{url.rstrip('/')}/status", timeout=timeout_s) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError, ValueError):
        return False


@dataclass(frozen=True)
class RunningRasa:
    url: str
    pid: int

    def rss_bytes(self) -> int:
        """Resident memory of the server process now (Linux /proc), for the benchmark."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        return 0


@contextmanager
def serve(venv: Path, model: Path, port: int, log_file: Path, start_timeout_s: float = 180.0) -> Iterator[RunningRasa]:
    """Run `rasa run --enable-api` on 127.0.0.1:port until the block ends."""
    url = f"http://127.0.0.1:{port}"
    command = [str(venv / "bin" / "rasa"), "run", "--enable-api", "--model", str(model),
               "--interface", "127.0.0.1", "--port", str(port)]
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with log_file.open("ab") as output:
        process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, env=rasa_env(),
                                   cwd=model.parent)
    try:
        deadline = time.monotonic() + start_timeout_s
        while not is_up(url):
            if process.poll() is not None:
                raise RasaUnavailable(f"rasa run exited with {process.returncode}; see {log_file}")
            if time.monotonic() > deadline:
                raise RasaUnavailable(f"rasa run did not answer on {url} within {start_timeout_s:.0f}s; see {log_file}")
            time.sleep(0.5)
        yield RunningRasa(url, process.pid)
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
