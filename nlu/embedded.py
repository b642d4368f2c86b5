"""The embedded backend: a scikit-learn classifier over character and word n-grams, in-process.

Character n-grams carry informal spellings and typos ("pesenan", "pesanan") close to each other;
word n-grams carry phrases. Logistic regression gives probabilities we can threshold.
"""

from __future__ import annotations

import logging
import pickle
import re
import time
from dataclasses import dataclass
from pathlib import Path

from scipy.sparse import hstack
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import FeatureUnion, Pipeline

from nlu.interpretation import Interpretation
from nlu.language import detect_language
from nlu.training_data import DEFAULT_DATA_DIR, Example, data_fingerprint, load_examples

log = logging.getLogger(__name__)
MODEL_FORMAT = 1
_SPACES = re.compile(r"\s+")
_REPEATS = re.compile(r"(.)\1{2,}")


def normalise(text: str) -> str:
    """Lower-case, squeeze elongations ("halooo" -> "haloo") and spaces."""
    return _SPACES.sub(" ", _REPEATS.sub(r"\1\1", text.lower())).strip()


def build_classifier() -> Pipeline:
    features = FeatureUnion(
        [
            ("chars", TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True, min_df=1)),
            ("words", TfidfVectorizer(analyzer="word", ngram_range=(1, 2), sublinear_tf=True,
                                      token_pattern=r"(?u)\b\w+\b")),
        ]
    )
    return Pipeline([("features", features), ("model", LogisticRegression(C=20.0, max_iter=3000))])


@dataclass
class TrainedModel:
    classifier: Pipeline
    fingerprint: str
    examples: int
    seconds: float
    format: int = MODEL_FORMAT


def train(examples: list[Example], fingerprint: str = "") -> TrainedModel:
    started = time.perf_counter()
    classifier = build_classifier()
    classifier.fit([normalise(e.text) for e in examples], [e.intent for e in examples])
    return TrainedModel(classifier, fingerprint, len(examples), time.perf_counter() - started)


class EmbeddedInterpreter:
    """Classifies text; below `threshold` the answer is out_of_scope, with the ranking kept for audit."""

    def __init__(self, model: TrainedModel, threshold: float) -> None:
        self.model = model
        self.threshold = threshold
        self._labels: list[str] = [str(label) for label in model.classifier.classes_]
        # Predicting one text through FeatureUnion pays joblib's dispatch cost per call; calling the
        # fitted vectorizers directly gives the same features in a fraction of the time.
        union = model.classifier.named_steps["features"]
        self._vectorizers = [vectorizer for _, vectorizer in union.transformer_list]
        self._model = model.classifier.named_steps["model"]

    def interpret(self, text: str, language_hint: str | None = None) -> Interpretation:
        language = detect_language(text) or language_hint
        cleaned = normalise(text)
        if not cleaned:
            return Interpretation("out_of_scope", 1.0, language)
        features = hstack([vectorizer.transform([cleaned]) for vectorizer in self._vectorizers]).tocsr()
        probabilities = self._model.predict_proba(features)[0]
        ranking = sorted(zip(self._labels, (float(p) for p in probabilities), strict=True), key=lambda p: -p[1])
        intent, confidence = ranking[0]
        if confidence < self.threshold:
            intent = "out_of_scope"
        return Interpretation(intent, round(confidence, 4), language, (), tuple(ranking[:5]))


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
