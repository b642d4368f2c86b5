"""Build the configured interpreter: the embedded backend, or Rasa with the embedded one behind it."""

from __future__ import annotations

from pathlib import Path

from bot.config import NluConfig
from nlu.embedded import EmbeddedInterpreter, load_or_train
from nlu.entities import warm_up
from nlu.interpretation import Interpreter
from nlu.rasa_backend import RasaInterpreter


def build_interpreter(
    config: NluConfig, model_cache: Path | None, embedded: EmbeddedInterpreter | None = None
) -> Interpreter:
    """The embedded model is always loaded: it answers alone, or whenever Rasa cannot."""
    # dateparser loads its language data on first use (~0.4 s); pay it at start-up, not in the first
    # customer's reply.
    warm_up()
    if embedded is None:
        data_dir = Path(config.data_dir) if config.data_dir else None
        embedded = load_or_train(config.confidence_threshold, data_dir, model_cache)
    if config.backend == "rasa":
        rasa = RasaInterpreter(config.rasa.url, embedded, config.confidence_threshold,
                               timeout_s=config.rasa.timeout_s, retry_after_s=config.rasa.retry_after_s)
        rasa.probe()  # logs at start-up when Rasa is not there; messages are understood either way
        return rasa
    return embedded
