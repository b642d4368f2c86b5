"""The embedded backend: a linear classifier over character and word n-grams, in-process.

Text is first normalised (`nlu.normalise`: slang lexicon, elongations, reduplication), so "sy udh
nunggu lamaaa bgt" and "saya sudah menunggu lama banget" meet. Character n-grams then carry the
misspellings the lexicon does not know ("pesenan", "pesanan"); word n-grams carry phrases.

The classifier is logistic regression fitted by SGD (a second on 3,500 examples). Its scores are
turned into probabilities by a softmax with one temperature fitted on out-of-fold predictions, so a
confidence of 0.8 means right about 8 times in 10 (`sapa nlu crossval` reports it); the
out_of_scope threshold in config.yml is therefore a probability a person can reason about.
"""

from __future__ import annotations

import logging
import pickle
import re
import time
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from scipy.optimize import minimize_scalar
from scipy.sparse import csr_matrix, hstack
from scipy.special import log_softmax
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import SGDClassifier
from sklearn.model_selection import StratifiedKFold

from nlu.entities import extract_entities
from nlu.interpretation import Interpretation
from nlu.language import detect_language
from nlu.normalise import normalise
from nlu.training_data import DEFAULT_DATA_DIR, Example, data_fingerprint, load_examples

log = logging.getLogger(__name__)
MODEL_FORMAT = 3
# A customer's point is made in the first few hundred words; classifying 10,000 pasted characters
# costs time and says nothing more.
MAX_CHARS = 2000
_WORD = re.compile(r"[^\W\d_]{2,}")


def build_vectorizers() -> list[TfidfVectorizer]:
    return [
        TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True),
        TfidfVectorizer(analyzer="word", ngram_range=(1, 2), sublinear_tf=True, token_pattern=r"(?u)\b\w+\b"),
    ]


def build_model() -> SGDClassifier:
    # Fixed seed: the same data always gives the same model (and the same test results).
    return SGDClassifier(loss="log_loss", alpha=2e-5, max_iter=50, tol=1e-4, random_state=1)


@dataclass
class TrainedModel:
    vectorizers: list[TfidfVectorizer]
    model: SGDClassifier
    temperature: float
    fingerprint: str
    examples: int
    seconds: float
    format: int = MODEL_FORMAT


def _features(vectorizers: list[TfidfVectorizer], texts: list[str]) -> csr_matrix:
    return hstack([vectorizer.transform(texts) for vectorizer in vectorizers]).tocsr()


def _fit(texts: list[str], intents: list[str]) -> tuple[list[TfidfVectorizer], SGDClassifier]:
    vectorizers = build_vectorizers()
    for vectorizer in vectorizers:
        vectorizer.fit(texts)
    return vectorizers, build_model().fit(_features(vectorizers, texts), intents)


def fit_temperature(scores: NDArray[np.float64], truth: NDArray[np.int64]) -> float:
    """The softmax temperature that makes held-out scores most likely (temperature scaling)."""

    def loss(temperature: float) -> float:
        return float(-log_softmax(scores / temperature, axis=1)[np.arange(len(truth)), truth].mean())

    return float(minimize_scalar(loss, bounds=(0.05, 20.0), method="bounded").x)


def train(examples: list[Example], fingerprint: str = "", calibration_folds: int = 3) -> TrainedModel:
    started = time.perf_counter()
    texts = [normalise(e.text) for e in examples]
    intents = np.array([e.intent for e in examples])
    labels = np.unique(intents)
    held_scores, held_truth = [], []
    for fit_rows, held_rows in StratifiedKFold(calibration_folds, shuffle=True, random_state=1).split(texts, intents):
        vectorizers, model = _fit([texts[i] for i in fit_rows], list(intents[fit_rows]))
        scores = model.decision_function(_features(vectorizers, [texts[i] for i in held_rows]))
        # Every fold holds every intent (stratified), so the fold's classes are the full label set.
        held_scores.append(scores)
        held_truth.append(np.searchsorted(labels, intents[held_rows]))
    temperature = fit_temperature(np.vstack(held_scores), np.concatenate(held_truth))
    vectorizers, model = _fit(texts, list(intents))
    return TrainedModel(vectorizers, model, temperature, fingerprint, len(examples), time.perf_counter() - started)


def _softmax(scores: NDArray[np.float64]) -> NDArray[np.float64]:
    """scipy.special.softmax for one vector, without its argument handling (~40 µs a call, more than the math)."""
    exps = np.exp(scores - scores.max())
    return exps / exps.sum()


class EmbeddedInterpreter:
    """Classifies text; below `threshold` the answer is out_of_scope, with the ranking kept for audit."""

    def __init__(self, model: TrainedModel, threshold: float) -> None:
        self.model = model
        self.threshold = threshold
        self._labels: list[str] = [str(label) for label in model.model.classes_]
        self._known_words = frozenset(w for w in model.vectorizers[1].vocabulary_ if " " not in w)
        # scikit-learn's transform/decision_function validate their input on every call, which costs
        # ~2 ms per message; the same arithmetic on one text is a few dozen vector entries. `scores`
        # redoes it directly from the fitted vocabularies, idf weights and coefficients (a test checks
        # it agrees with scikit-learn).
        self._analyzers = [vectorizer.build_analyzer() for vectorizer in model.vectorizers]
        self._vocabularies = [vectorizer.vocabulary_ for vectorizer in model.vectorizers]
        self._idfs = [vectorizer.idf_ for vectorizer in model.vectorizers]
        self._offsets = list(np.cumsum([0] + [len(v) for v in self._vocabularies[:-1]]))
        self._coef = np.ascontiguousarray(model.model.coef_.T)  # features x intents
        self._intercept = model.model.intercept_

    def scores(self, cleaned: str) -> NDArray[np.float64]:
        """The classifier's raw scores for one normalised text, equal to scikit-learn's decision_function."""
        total = self._intercept.astype(np.float64)
        for analyzer, vocabulary, idf, offset in zip(self._analyzers, self._vocabularies, self._idfs, self._offsets,
                                                     strict=True):
            # Looked up by map and counted by Counter (both in C): the per-gram Python loop was a fifth of a message's
            # understanding.
            counts = Counter([index for index in map(vocabulary.get, analyzer(cleaned)) if index is not None])
            if not counts:
                continue
            indices = np.fromiter(counts, dtype=np.int64, count=len(counts))
            weights = (1.0 + np.log(np.fromiter(counts.values(), dtype=np.float64, count=len(counts)))) * idf[indices]
            weights /= np.sqrt(weights @ weights)
            total += weights @ self._coef[indices + offset]
        return total

    def interpret(self, text: str, language_hint: str | None = None, now: datetime | None = None) -> Interpretation:
        text = text[:MAX_CHARS]
        language = detect_language(text) or language_hint
        entities = extract_entities(text, now)
        cleaned = normalise(text)
        if not cleaned:
            return Interpretation("out_of_scope", 1.0, language, entities)
        if not entities and not any(word in self._known_words for word in _WORD.findall(cleaned)):
            # Not one word the training data has ever used, and nothing we can extract: keyboard mash,
            # another language, or a pasted code. Guessing an intent from character shapes would be noise.
            return Interpretation("out_of_scope", 1.0, language, entities)
        probabilities = _softmax(self.scores(cleaned) / self.model.temperature)
        ranking = sorted(zip(self._labels, (float(p) for p in probabilities), strict=True), key=lambda p: -p[1])
        intent, confidence = ranking[0]
        if confidence < self.threshold:
            intent = "out_of_scope"
        ranked = tuple((label, round(p, 4)) for label, p in ranking[:5])
        return Interpretation(intent, round(confidence, 4), language, entities, ranked)


def load_or_train(
    threshold: float, data_dir: Path | None = None, cache_dir: Path | None = None
) -> EmbeddedInterpreter:
    """Use the cached model for the current training data if there is one; train otherwise."""
    data_dir = data_dir or DEFAULT_DATA_DIR
    fingerprint = data_fingerprint(data_dir)
    cache = cache_dir / f"embedded-{fingerprint}.pkl" if cache_dir else None
    if cache is not None and cache.is_file():
        try:
            # Our own file, written by `sapa nlu train` or an earlier start-up, never user input.
            model = pickle.loads(cache.read_bytes())
            if isinstance(model, TrainedModel) and model.format == MODEL_FORMAT:
                return EmbeddedInterpreter(model, threshold)
        except Exception as exc:  # a stale or broken cache is retrained, not fatal
            log.warning("ignoring unreadable NLU model cache %s: %s", cache, exc)
    model = train(load_examples(data_dir), fingerprint)
    log.info("trained embedded NLU on %d examples in %.2fs", model.examples, model.seconds)
    if cache is not None:
        save(model, cache)
    return EmbeddedInterpreter(model, threshold)


def save(model: TrainedModel, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(pickle.dumps(model))
    tmp.replace(path)
