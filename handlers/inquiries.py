"""General questions (`ask_info`) answered from the FAQ in config, matched by meaning; else a human is offered.

CRM-2.1 and CRM-2.3: the answer is the configured text in the customer's language, never invented.
A question is compared with every entry's example phrasings and its question, all normalised the
same way (`nlu.normalise`: "brp ongkir" and "berapa ongkos kirim" meet), with the filler words
that say nothing about *which* question (kak, min, ya, dong, gak as a question tag, you, the)
dropped and a trailing "-nya" cut ("garansinya" is "garansi"). Two TF-IDF spaces score the
match: character 2-5-grams (typos, affixes: "pengirimannya", "pngiriman") weigh 0.7 and words 0.3.

A term no phrasing has still counts in the question's length, with half the squared weight of the rarest term, so
"harga tv 43 inch berapa" (a price: not in the FAQ) scores 0.19, below any entry, while "garansi tv
berapa lama" scores 0.61 for warranty. An entry scores the mean of its two best phrasings, so one
example that happens to share a word with an unrelated question does not carry it alone. The best
entry answers if it reaches `faq.min_similarity` (0.3, chosen on a tuning set of paraphrases; the
accuracy on a second, held-out set is checked in tests/handlers/test_inquiries.py).
"""

from __future__ import annotations

import math
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy.sparse import csr_matrix
from sklearn.feature_extraction.text import TfidfVectorizer

from bot.config import FaqConfig, FaqEntry
from bot.templating import render
from handlers.turn import Reply, Route, Turn
from nlu.normalise import words
from store.models import Message

# Words (after normalisation) that every FAQ question may carry: politeness, particles, pronouns,
# question tags. Question words (berapa, kapan, how, when) stay: they tell cost from time.
_FILLER = frozenset(
    """
kakak admin min gan sis mbak mas bapak ibu pak bu halo hai selamat pagi siang sore malam permisi
ya iya sih dong deh nih kok kan yah tuh lah kah tidak aja saja yang di ke dari dan atau untuk buat
apakah mohon info informasi tolong mau ingin tanya saya aku kami anda kalian kamu
the a an do does you your i me my we our is are it to of for with please there any
""".split()
)
_CHAR_WEIGHT = 0.7  # of the similarity; words the rest
_UNSEEN = 0.5  # a term no phrasing has counts this share of its squared weight in the question's length


@dataclass(frozen=True)
class Match:
    entry: FaqEntry
    similarity: float


class _Space:
    """One TF-IDF space fitted on the phrasings; scores a question against every phrasing."""

    def __init__(self, vectorizer: TfidfVectorizer, phrasings: list[str]) -> None:
        self.rows: csr_matrix = vectorizer.fit_transform(phrasings).tocsr()  # l2-normalised rows
        self.analyse: Callable[[str], list[str]] = vectorizer.build_analyzer()
        self.vocabulary: dict[str, int] = vectorizer.vocabulary_
        self.idf: NDArray[np.float64] = vectorizer.idf_
        self.unseen_idf = math.log(1 + len(phrasings)) + 1  # smooth idf of a term in no phrasing

    def cosines(self, text: str) -> NDArray[np.float64]:
        query = np.zeros(len(self.vocabulary))
        norm = 0.0
        for term, count in Counter(self.analyse(text)).items():
            column = self.vocabulary.get(term)
            if column is None:
                weight = (1 + math.log(count)) * self.unseen_idf
                norm += _UNSEEN * weight * weight
            else:
                weight = (1 + math.log(count)) * self.idf[column]
                norm += weight * weight
                query[column] = weight
        if norm == 0.0:
            return np.zeros(self.rows.shape[0])
        return np.asarray(self.rows @ query) / math.sqrt(norm)


class FaqIndex:
    """The FAQ entries' phrasings, vectorised once; `nearest` is a few sparse dot products."""

    def __init__(self, faq: FaqConfig) -> None:
        self.entries = faq.entries
        phrasings: list[str] = []
        owners: list[int] = []
        for number, entry in enumerate(faq.entries):
            for phrasing in (*entry.examples, *entry.question.values()):
                cleaned = _clean(phrasing)
                if cleaned:
                    phrasings.append(cleaned)
                    owners.append(number)
        owned = np.array(owners, dtype=np.int64)
        self.rows_of = [np.flatnonzero(owned == number) for number in range(len(faq.entries))]
        self.spaces = [
            _Space(TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True), phrasings),
            _Space(TfidfVectorizer(analyzer="word", sublinear_tf=True, token_pattern=r"(?u)\b\w+\b"), phrasings),
        ] if phrasings else []

    def nearest(self, text: str) -> Match | None:
        """The entry most similar in meaning to `text`, however similar; None if nothing compares."""
        cleaned = _clean(text)
        if not cleaned or not self.spaces:
            return None
        char_space, word_space = self.spaces
        similarity = _CHAR_WEIGHT * char_space.cosines(cleaned) + (1 - _CHAR_WEIGHT) * word_space.cosines(cleaned)
        scores = [float(np.sort(similarity[rows])[-2:].mean()) if len(rows) else 0.0 for rows in self.rows_of]
        best = int(np.argmax(scores))
        return Match(self.entries[best], scores[best])


def _clean(text: str) -> str:
    # "?" and "!" tell the classifier a question is asked; here every text is one, so they are noise.
    kept = (word for word in words(text) if word not in _FILLER and word not in ("?", "!"))
    return " ".join(word[:-3] if len(word) > 5 and word.endswith("nya") else word for word in kept)


_indexes: dict[int, tuple[FaqConfig, FaqIndex]] = {}
_indexes_lock = threading.Lock()


def faq_index(faq: FaqConfig) -> FaqIndex:
    """The index of this (frozen) FAQ config, built on first use and kept while the config lives."""
    cached = _indexes.get(id(faq))
    if cached is not None and cached[0] is faq:
        return cached[1]
    with _indexes_lock:
        cached = _indexes.get(id(faq))
        if cached is None or cached[0] is not faq:
            if len(_indexes) >= 8:  # settings are replaced rarely (tests, reloads): keep a few, not all
                _indexes.clear()
            cached = (faq, FaqIndex(faq))
            _indexes[id(faq)] = cached
        return cached[1]


def answer_question(turn: Turn) -> list[Reply]:
    faq = turn.settings.faq
    match = faq_index(faq).nearest(turn.message.text)
    answered = match is not None and match.similarity >= faq.min_similarity
    _log(turn, match, answered)
    name = turn.customer.name or ""
    if match is None or not answered:
        return [turn.reply("faq_no_answer", buttons=(turn.button("button_agent", "intent:talk_to_agent"),),
                           name=name)]
    texts = {str(language): text for language, text in match.entry.answer.items()}
    answer = render(texts.get(turn.language) or texts[turn.settings.default_language],
                    {"company": turn.settings.company.name, "name": name})
    turn.extra["faq_id"] = match.entry.id
    return [turn.reply("faq_answer", name=name, answer=answer)]


def _log(turn: Turn, match: Match | None, answered: bool) -> None:
    """Keep which entry answered (or came nearest) with the message: the interaction log shows it, and
    questions the FAQ missed can be found to write new entries."""
    row = turn.session.get(Message, turn.message_id)
    if row is None:
        return
    nearest = None if match is None else {"id": match.entry.id, "similarity": round(match.similarity, 3)}
    row.meta = {**(row.meta or {}), "faq": {"answered": answered, "nearest": nearest}}


ROUTES = [Route(answer_question, intent="ask_info")]
