"""Read training examples from Rasa NLU YAML files (the same files train both backends)."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from nlu.interpretation import INTENTS

DEFAULT_DATA_DIR = Path(__file__).parent / "data"
# Rasa entity annotations: [text](entity) or [text]{"entity": ...}; we train on the plain text.
_ANNOTATION = re.compile(r"\[([^\]]+)\](?:\([^)]*\)|\{[^}]*\})")


class TrainingDataError(ValueError):
    pass


@dataclass(frozen=True)
class Example:
    text: str
    intent: str


def data_files(data_dir: Path) -> list[Path]:
    return sorted(data_dir.glob("*.yml")) + sorted(data_dir.glob("*.yaml"))


def load_examples(data_dir: Path = DEFAULT_DATA_DIR) -> list[Example]:
    files = data_files(data_dir)
    if not files:
        raise TrainingDataError(f"no NLU training files (*.yml) in {data_dir}")
    examples: list[Example] = []
    for path in files:
        doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        for block in doc.get("nlu") or []:
            intent = block.get("intent")
            if intent is None:
                continue  # synonyms, regexes, lookups: not intent examples
            if intent not in INTENTS:
                raise TrainingDataError(f"{path.name}: unknown intent {intent!r}; known: {', '.join(INTENTS)}")
            for line in str(block.get("examples") or "").splitlines():
                line = line.strip()
                if line.startswith("- "):
                    text = _ANNOTATION.sub(r"\1", line[2:].strip())
                    if text:
                        examples.append(Example(text, intent))
    missing = set(INTENTS) - {e.intent for e in examples}
    if missing:
        raise TrainingDataError(f"intents without examples in {data_dir}: {', '.join(sorted(missing))}")
    return examples


def data_fingerprint(data_dir: Path = DEFAULT_DATA_DIR) -> str:
    digest = hashlib.sha256()
    for path in data_files(data_dir):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]
