"""Judge a backend on labelled messages: intent accuracy, macro-F1, confusions, entities, speed.

Used by `sapa nlu evaluate`, `sapa nlu crossval`, the tests and `bench/nlu_compare.py`, so every
number Sapa reports about its understanding is computed one way.
"""

from __future__ import annotations

import json
import random
import time
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from nlu.interpretation import Interpreter
from nlu.training_data import Example


class EvaluationFileError(ValueError):
    pass


@dataclass(frozen=True)
class Case:
    text: str
    intent: str
    entities: tuple[tuple[str, str], ...] = ()  # (entity, value as text), compared as a set
    now: datetime | None = None


@dataclass
class IntentScore:
    precision: float
    recall: float
    f1: float
    support: int


@dataclass
class Report:
    n: int
    accuracy: float
    macro_f1: float
    per_intent: dict[str, IntentScore]
    confusions: list[dict[str, Any]]  # the most frequent (expected, predicted) mistakes with examples
    entity_precision: float
    entity_recall: float
    entity_f1: float
    per_entity: dict[str, IntentScore]
    ms_per_message: float
    backends: dict[str, int] = field(default_factory=dict)  # which backend answered how many
    predicted: list[str] = field(default_factory=list, repr=False)  # per case, in order

    def as_json(self) -> dict[str, Any]:
        body = asdict(self)
        return {
            "n": self.n, "accuracy": round(self.accuracy, 4), "macro_f1": round(self.macro_f1, 4),
            "per_intent": body["per_intent"], "entity_f1": round(self.entity_f1, 4),
            "entity_precision": round(self.entity_precision, 4), "entity_recall": round(self.entity_recall, 4),
            "per_entity": body["per_entity"], "confusions": self.confusions,
            "ms_per_message": round(self.ms_per_message, 3), "backends": self.backends,
        }


def load_cases(path: Path) -> list[Case]:
    """Read JSONL lines {"text", "intent", "entities"?, "now"?}; a bad line is an error naming it."""
    cases: list[Case] = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            text, intent = row["text"], row["intent"]
            if not isinstance(text, str) or not isinstance(intent, str):
                raise TypeError("text and intent must be strings")
            entities = tuple(sorted((str(e["entity"]), str(e["value"])) for e in row.get("entities") or []))
            now = datetime.fromisoformat(row["now"]) if row.get("now") else None
        except (ValueError, KeyError, TypeError) as exc:
            raise EvaluationFileError(f"{path}:{number}: {exc}") from exc
        cases.append(Case(text, intent, entities, now))
    if not cases:
        raise EvaluationFileError(f"{path}: no test messages")
    return cases


def score(labels: list[str], gold: list[str], predicted: list[str]) -> dict[str, IntentScore]:
    scores: dict[str, IntentScore] = {}
    for label in labels:
        tp = sum(1 for g, p in zip(gold, predicted, strict=True) if g == label and p == label)
        fp = sum(1 for g, p in zip(gold, predicted, strict=True) if g != label and p == label)
        fn = sum(1 for g, p in zip(gold, predicted, strict=True) if g == label and p != label)
        scores[label] = _score(tp, fp, fn)
    return scores


def _score(tp: int, fp: int, fn: int) -> IntentScore:
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return IntentScore(round(precision, 4), round(recall, 4), round(f1, 4), tp + fn)


def evaluate(interpreter: Interpreter, cases: list[Case]) -> Report:
    predicted: list[str] = []
    found: list[set[tuple[str, str]]] = []
    backends: Counter[str] = Counter()
    started = time.perf_counter()
    for case in cases:
        answer = interpreter.interpret(case.text, None, case.now)
        predicted.append(answer.intent)
        found.append({(e.entity, str(e.value)) for e in answer.entities})
        backends[answer.backend] += 1
    seconds = time.perf_counter() - started
    gold = [case.intent for case in cases]
    # Macro-F1 over the intents the test set contains: an intent it never asks about cannot be scored.
    per_intent = score(sorted(set(gold)), gold, predicted)
    mistakes: defaultdict[tuple[str, str], list[str]] = defaultdict(list)
    for case, guess in zip(cases, predicted, strict=True):
        if guess != case.intent:
            mistakes[(case.intent, guess)].append(case.text)
    confusions = [
        {"expected": expected, "predicted": guess, "count": len(texts), "examples": texts[:3]}
        for (expected, guess), texts in sorted(mistakes.items(), key=lambda item: -len(item[1]))[:10]
    ]
    entity_counts: defaultdict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    for case, got in zip(cases, found, strict=True):
        expected = set(case.entities)
        for kind, _ in expected & got:
            entity_counts[kind][0] += 1
        for kind, _ in got - expected:
            entity_counts[kind][1] += 1
        for kind, _ in expected - got:
            entity_counts[kind][2] += 1
    per_entity = {kind: _score(*counts) for kind, counts in sorted(entity_counts.items())}
    total = _score(*(sum(counts[i] for counts in entity_counts.values()) for i in range(3)))
    return Report(
        n=len(cases),
        accuracy=sum(1 for g, p in zip(gold, predicted, strict=True) if g == p) / len(cases),
        macro_f1=sum(s.f1 for s in per_intent.values()) / len(per_intent),
        per_intent=per_intent,
        confusions=confusions,
        entity_precision=total.precision,
        entity_recall=total.recall,
        entity_f1=total.f1,
        per_entity=per_entity,
        ms_per_message=seconds * 1000 / len(cases),
        backends=dict(backends),
        predicted=predicted,
    )


def format_report(report: Report) -> str:
    lines = [
        f"messages        {report.n}",
        f"accuracy        {report.accuracy:.3f}",
        f"macro-F1        {report.macro_f1:.3f}",
        f"entities        precision {report.entity_precision:.3f}  recall {report.entity_recall:.3f}  "
        f"F1 {report.entity_f1:.3f}",
        f"ms per message  {report.ms_per_message:.2f}",
        f"answered by     {', '.join(f'{name} {count}' for name, count in report.backends.items())}",
        "",
        f"{'intent':<16}{'precision':>10}{'recall':>8}{'F1':>8}{'n':>6}",
    ]
    for intent, s in sorted(report.per_intent.items(), key=lambda item: item[1].f1):
        lines.append(f"{intent:<16}{s.precision:>10.3f}{s.recall:>8.3f}{s.f1:>8.3f}{s.support:>6}")
    if report.per_entity:
        lines += ["", f"{'entity':<16}{'precision':>10}{'recall':>8}{'F1':>8}{'n':>6}"]
        for kind, s in report.per_entity.items():
            lines.append(f"{kind:<16}{s.precision:>10.3f}{s.recall:>8.3f}{s.f1:>8.3f}{s.support:>6}")
    if report.confusions:
        lines += ["", "worst confusions (expected -> predicted):"]
        for c in report.confusions:
            lines.append(f"  {c['expected']} -> {c['predicted']}  x{c['count']}  e.g. {c['examples'][0]!r}")
    return "\n".join(lines)


def stratified_folds(examples: list[Example], folds: int, seed: int = 7) -> list[list[Example]]:
    """Split so every fold holds each intent in proportion; the same seed gives the same folds."""
    by_intent: defaultdict[str, list[Example]] = defaultdict(list)
    for example in examples:
        by_intent[example.intent].append(example)
    parts: list[list[Example]] = [[] for _ in range(folds)]
    rng = random.Random(seed)
    offset = 0
    for intent in sorted(by_intent):
        group = by_intent[intent][:]
        rng.shuffle(group)
        for i, example in enumerate(group):
            parts[(i + offset) % folds].append(example)
        offset += len(group)
    return parts
