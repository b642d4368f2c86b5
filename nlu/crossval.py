"""K-fold cross-validation of the embedded backend on the training data (`sapa nlu crossval`)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from nlu.embedded import EmbeddedInterpreter, train
from nlu.evaluation import Case, IntentScore, Report, evaluate, score, stratified_folds
from nlu.training_data import Example


@dataclass
class CrossvalResult:
    folds: list[Report]
    per_intent: dict[str, IntentScore]  # over all held-out predictions together
    train_seconds: float  # mean per fold

    @property
    def macro_f1(self) -> float:
        return sum(s.f1 for s in self.per_intent.values()) / len(self.per_intent)

    @property
    def accuracy(self) -> float:
        return sum(r.accuracy * r.n for r in self.folds) / sum(r.n for r in self.folds)

    def as_json(self) -> dict[str, Any]:
        return {
            "folds": len(self.folds), "n": sum(r.n for r in self.folds), "accuracy": round(self.accuracy, 4),
            "macro_f1": round(self.macro_f1, 4), "fold_macro_f1": [round(r.macro_f1, 4) for r in self.folds],
            "per_intent": {k: vars(v) for k, v in self.per_intent.items()},
            "train_seconds": round(self.train_seconds, 3),
        }


def crossval(examples: list[Example], folds: int, threshold: float) -> CrossvalResult:
    parts = stratified_folds(examples, folds)
    reports: list[Report] = []
    gold: list[str] = []
    predicted: list[str] = []
    seconds = 0.0
    for held in range(folds):
        training = [e for i, part in enumerate(parts) if i != held for e in part]
        started = time.perf_counter()
        interpreter = EmbeddedInterpreter(train(training), threshold)
        seconds += time.perf_counter() - started
        cases = [Case(e.text, e.intent) for e in parts[held]]
        reports.append(evaluate(interpreter, cases))
        gold += [c.intent for c in cases]
        predicted += reports[-1].predicted
    return CrossvalResult(reports, score(sorted(set(gold)), gold, predicted), seconds / folds)


def format_crossval(result: CrossvalResult) -> str:
    lines = [
        f"{len(result.folds)}-fold cross-validation on {sum(r.n for r in result.folds)} training examples",
        f"accuracy  {result.accuracy:.3f}",
        f"macro-F1  {result.macro_f1:.3f}   per fold: {', '.join(f'{r.macro_f1:.3f}' for r in result.folds)}",
        f"training  {result.train_seconds:.2f}s per fold",
        "",
        f"{'intent':<16}{'precision':>10}{'recall':>8}{'F1':>8}{'n':>6}",
    ]
    for intent, s in sorted(result.per_intent.items(), key=lambda item: item[1].f1):
        lines.append(f"{intent:<16}{s.precision:>10.3f}{s.recall:>8.3f}{s.f1:>8.3f}{s.support:>6}")
    return "\n".join(lines)
