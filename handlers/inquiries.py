"""General questions (`ask_info`) answered from the FAQ in config, only when an entry truly answers them.

CRM-2.1 and CRM-2.3: the answer is the configured text in the customer's language, never invented, and
never the *nearest* text when no entry answers what was asked ("kirim ke luar negeri?" is not the
domestic shipping entry): then the customer is told honestly that a person will answer, and offered one.

Two questions decide, both on the normalised text (`nlu.normalise`: "brp ongkir" and "berapa ongkos
kirim" meet), with the filler words that say nothing about *which* question (kak, min, ya, dong, the)
dropped and a trailing "-nya" cut:

1. How close is it to each entry? Every entry's example phrasings, its question and its `terms` (as one
   more phrasing) are scored in two TF-IDF spaces, character 2-5-grams (typos, affixes: "pngiriman")
   weighing 0.7 and words 0.3. A term no phrasing has still counts in the question's length (half the
   squared weight of the rarest term), and an entry scores the mean of its two best phrasings.
2. Does the entry cover everything the question is about? The question's *content words* are what is
   left after the filler, the *form words* (function words, question words and general verbs: bisa,
   ada, berapa, gimana, harga, besok, how, can, available…: they say how something is asked, not what
   about), any token with a digit (amounts, sizes, "s24") and any multi-word common term ("mesin cuci").
   Each content word must be known to the entry — a word of its question, examples, answer or `terms`
   (synonyms, slang), or a synonym of one (`_SYNONYMS`: its answer says "tiba", the customer "sampai")
   — or be one of `faq.common_terms` (products, brands, places: "garansi kulkas" asks about the warranty
   whatever the product). Words are compared by their stems (Indonesian affixes and English endings cut:
   "pengembalian" meets "kembali", "dipasangin" meets "pasang", "stores" meets "store"), and one typo is
   forgiven in a word no vocabulary knows as it is (a letter dropped in four letters or more, "taun";
   added, changed or two swapped in five or more: "fakturr", "surabya"; but "pasang" is not "padang").
   At least one content word must be the entry's *own* (its question, examples or terms, not only its
   answer or a common term), so "ready stok iphone?" answers nothing. "kirim ke luar negeri" leaves
   "negeri" uncovered by the shipping entry, "ada asuransi pengiriman?" leaves "asuransi", "toko buka
   lowongan kerja?" leaves "lowongan" and "kerja" uncovered by opening hours.

Of the entries that cover the question and reach `faq.min_similarity` (0.1: the coverage does the
sorting, the similarity only keeps out an entry that shares a word or two of its answer), the one whose
own words explain more of the question answers, then the more similar one. If none does, nothing is
guessed: the honest no-answer with the handoff button. The most similar entry and the words it did not
cover are kept in `messages.meta["faq"]`: they are what a new entry or a new term would need. Measured
on paraphrases of every entry and on questions the FAQ does not answer, written apart from the config
(tests/handlers/faq_cases.jsonl; the numbers are in docs/architecture.md, Routing).
"""

from __future__ import annotations

import math
import re
import threading
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from numpy.typing import NDArray
from scipy.sparse import csr_matrix
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS, TfidfVectorizer

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
ya iya sih dong deh nih kok kan yah tuh lah kah nya tidak aja saja yang di ke dari dan atau untuk buat
apakah mohon info informasi tolong mau ingin tanya saya aku kami anda kalian kamu
the a an do does you your i me my we our is are it to of for with please there any
""".split()
)
# Words that say how something is asked, not what about: function words, question words and general
# verbs. A question made only of these and common terms asks nothing the FAQ can be sure of. Compared
# after normalisation and by stem ("bisakah" is "bisa", "dijual" is "jual"). English: scikit-learn's
# stop words less the few that name a topic here (interest, bill, call…), plus general verbs.
_FORM_ID = frozenset(
    """
ada adakah adalah agak agar akan aku amat antara apa apakah apalagi atas atau bagai bagaimana bagi bahkan
bahwa baik banyak bawah beberapa begini begitu belum benar bener berapa berbagai beri berikan bersama
betul biasa biasanya bila apabila bisa boleh bukan cukup cuma dalam dapat dapet daripada demi dengan
depan dia dimana mana dulu enggak hal hampir hanya harus hingga ikut ingin jadi jangan jauh jika juga
kalau karena kata kemudian kenapa mengapa kepada kita kurang lagi lain lalu lama lebih lewat melalui maka
masih memang menjadi mereka misalnya mungkin nanti oleh pada paling para pasti per perlu pernah pula pun
punya saat ketika sambil sama satu sebab sebagai sebelum setelah sebuah secara sedang sedikit segera
sejak sekali sekarang selalu selama seluruh semua seperti sering serta setiap tiap sudah supaya tadi
telah tentang tentu terhadap terlalu tersebut tetapi tapi terus untuk waktu yaitu yakni sekitar kira
gimana cara caranya kapan siapa harga biaya tarif banget sangat ini itu pakai pake via tersedia butuh
gitu pas bikin minta kasih tahu gak masuk hari langkah prosedur proses pesanan maksimal minimal maksimum
program jual beri kasih lihat cek coba bantu jelas detail informasi sistem syarat ketentuan berlaku
atau kah dong deh sih mohon silakan persen tolong bagaimanakah akhir awal tahun bulan minggu pekan
cantum pengajuan ajukan mengajukan diajukan lakukan besok kemarin lusa hubungi dihubungi menghubungi guna
gunakan menggunakan pilih pilihan wilayah daerah area kawasan juta ribu rupiah selatan utara timur barat
tengah terbaru disini sini disitu situ disana sana kesini
""".split()
)
_FORM_EN = frozenset(ENGLISH_STOP_WORDS - {"interest", "bill", "call", "system", "fire", "name", "free"}) | frozenset(
    """
whats use using going go take come find offer offers provide sell sold available possible cost costs price
need want like know tell way ways kind sort ones steps step procedure process let make long plan plans
near nearby new newest latest option options
""".split()
)
_FORM = _FORM_ID | _FORM_EN
# Words that mean the same to a question, in either language: an entry that knows one knows them all
# (its answer says "tiba", the customer "sampai"). Only plain synonyms, none that narrows a topic.
_SYNONYMS = tuple(frozenset(group.split()) for group in (
    "sampai tiba datang arrive",
    "uang dana money",
    "toko gerai outlet store shop",
    "beli belanja pembelian buy purchase",
    "pasang instalasi install",
    "kirim antar deliver ship",
    "tukar exchange",
    "rusak cacat broken damaged defective faulty",
    "kembali balik return",
    "kartu card",
    "kredit credit",
    "bayar pay",
))
_CHAR_WEIGHT = 0.7  # of the similarity; words the rest
_UNSEEN = 0.5  # a term no phrasing has counts this share of its squared weight in the question's length
_FUZZY_MIN = 5  # a word this long may differ from a known one by one letter (a typo)

# Indonesian affixes, longest first; a nasal prefix may have swallowed the root's first letter
# ("pengiriman" is peng + kirim + an, "pemasangan" pem + pasang + an).
_PREFIXES = ("memper", "diper", "meng", "meny", "peng", "peny", "mem", "men", "pem", "pen", "ber", "ter",
             "per", "me", "pe", "be", "di", "ke", "se")
_NASAL = {"meng": "k", "peng": "k", "meny": "s", "peny": "s", "mem": "p", "pem": "p", "men": "t", "pen": "t"}
_SUFFIXES = ("nya", "kan", "lah", "kah", "an", "in", "i", "ku", "mu")
_ENGLISH_SUFFIXES = (("ations", ""), ("ation", ""), ("ments", ""), ("ment", ""), ("ing", ""), ("ies", "y"),
                     ("ers", ""), ("er", ""), ("ed", ""), ("es", ""), ("ly", ""), ("s", ""))
_MIN_STEM = 3


@lru_cache(maxsize=8192)
def stems(word: str) -> frozenset[str]:
    """The word and the roots it may have once affixes are cut: "pengembaliannya" -> {..., "kembali"}."""
    found = {word}
    frontier = {word}
    for _ in range(2):  # at most two layers each way: "di-kembali-kan", "peng-kirim-an-nya"
        cut: set[str] = set()
        for form in frontier:
            for suffix in _SUFFIXES:
                if form.endswith(suffix) and len(form) - len(suffix) >= _MIN_STEM:
                    cut.add(form[: -len(suffix)])
            for prefix in _PREFIXES:
                if form.startswith(prefix) and len(form) - len(prefix) >= _MIN_STEM:
                    rest = form[len(prefix):]
                    cut.add(rest)
                    if prefix in _NASAL and rest[0] in "aeiou":
                        cut.add(_NASAL[prefix] + rest)
        frontier = cut - found
        found |= cut
    if word.isascii():
        for suffix, replacement in _ENGLISH_SUFFIXES:
            if word.endswith(suffix) and len(word) - len(suffix) + len(replacement) >= _MIN_STEM - (suffix == "s"):
                found.add(word[: -len(suffix)] + replacement)  # "tvs" is "tv"
                if suffix in ("ed", "es", "ing", "er", "ers"):
                    found.add(word[: -len(suffix)] + "e")  # "arrived", "closes", "using" are "arrive", "close", "use"
                break
    return frozenset(found)


def _deletions(stem: str) -> set[str]:
    return {stem[:i] + stem[i + 1:] for i in range(len(stem))}


class _Vocabulary:
    """The words an entry (or the common terms) knows: by stem, and as written less one letter (typos)."""

    def __init__(self, texts: Iterable[str]) -> None:
        self.stems: set[str] = set()
        for text in texts:
            for word in _words_of(text):
                self.stems |= stems(word)
        for group in _SYNONYMS:
            if not self.stems.isdisjoint(group):
                for synonym in group:
                    self.stems |= stems(synonym)
        # Every known word or stem of five letters or more, by each of its forms less one letter: a typo is
        # one letter away. (Shorter stems are left out: "gera", cut from "segera", would forgive "gerai".)
        self.long = {form for form in self.stems if len(form) >= _FUZZY_MIN}
        self.less_one: dict[str, set[str]] = {}
        for form in self.long:
            for shorter in _deletions(form):
                self.less_one.setdefault(shorter, set()).add(form)

    def has(self, word: str) -> bool:
        """Known as written or by a stem, no typo forgiven."""
        return not stems(word).isdisjoint(self.stems)

    def knows(self, word: str, typo: bool = True) -> bool:
        """Known by stem, or (`typo`) one typo away from a known word."""
        if self.has(word):
            return True
        if not typo:
            return False
        # One letter dropped ("taun", "ongkr"), added ("fakturr"), changed ("surabya", "dituker") or two
        # neighbours swapped, in a word or stem of four letters or more.
        return any(self._one_typo_from(form) for form in stems(word) if len(form) >= _FUZZY_MIN - 1)

    def _one_typo_from(self, form: str) -> bool:
        if form in self.less_one:
            return True
        if len(form) < _FUZZY_MIN:
            return False
        shorter = _deletions(form)
        return not shorter.isdisjoint(self.long) or any(
            _changed_or_swapped(form, known) for one in shorter for known in self.less_one.get(one, ())
        )


def _changed_or_swapped(a: str, b: str) -> bool:
    """Same length and one letter changed, or two neighbouring letters swapped."""
    if len(a) != len(b):
        return False
    different = [i for i in range(len(a)) if a[i] != b[i]]
    return len(different) == 1 or (
        len(different) == 2 and different[1] == different[0] + 1
        and a[different[0]] == b[different[1]] and a[different[1]] == b[different[0]]
    )


@dataclass(frozen=True)
class Match:
    """The entry nearest to a question, how similar, and whether it answers it (covers every content word)."""

    entry: FaqEntry
    similarity: float
    answers: bool = False
    uncovered: tuple[str, ...] = ()


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
    """The FAQ entries' phrasings and vocabularies, built once; `match` is sparse dot products and set look-ups."""

    def __init__(self, faq: FaqConfig) -> None:
        self.entries = faq.entries
        self.min_similarity = faq.min_similarity
        phrasings: list[str] = []
        owners: list[int] = []
        for number, entry in enumerate(faq.entries):
            for phrasing in (*entry.examples, *entry.question.values(), " ".join(entry.terms)):
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
        # A common term of several words ("mesin cuci") is common only as a whole: "cuci" alone is a topic.
        self.common = _Vocabulary(term for term in faq.common_terms if len(words(term)) == 1)
        self.common_phrases = {tuple(words(term)) for term in faq.common_terms if len(words(term)) > 1}
        # What an entry is about (its own words) and everything it speaks of (its answer too).
        self.topics = [_Vocabulary((*entry.question.values(), *entry.examples, *entry.terms)) for entry in faq.entries]
        self.vocabularies = [
            _Vocabulary((*entry.question.values(), *entry.examples, *entry.answer.values(), *entry.terms))
            for entry in faq.entries
        ]

    def similarities(self, cleaned: str) -> list[float]:
        char_space, word_space = self.spaces
        similarity = _CHAR_WEIGHT * char_space.cosines(cleaned) + (1 - _CHAR_WEIGHT) * word_space.cosines(cleaned)
        return [float(np.sort(similarity[rows])[-2:].mean()) if len(rows) else 0.0 for rows in self.rows_of]

    def match(self, text: str) -> Match | None:
        """The entry that answers `text` (`answers` set), else the nearest one; None if nothing compares.

        Of the entries that cover every content word, with one of their own, the one whose own topic
        words explain more of the question wins, then the more similar one. "bisa pake kartu kredit
        visa?" is most similar to instalments, but "visa" is no instalment word: payment methods answer.
        """
        ranked = self.ranked(text)
        return ranked[0] if ranked else None

    def ranked(self, text: str) -> list[Match]:
        """Every entry compared with `text`: the one that answers first (as `match` picks it), then the others
        by similarity; empty if nothing compares. The console's "try a question" shows the first few."""
        cleaned = _clean(text)
        if not cleaned or not self.spaces:
            return []
        scores = self.similarities(cleaned)
        said = cleaned.split()
        in_phrase = {i for phrase in self.common_phrases for start in range(len(said) - len(phrase) + 1)
                     if tuple(said[start:start + len(phrase)]) == phrase for i in range(start, start + len(phrase))}
        content = [word for i, word in enumerate(said) if i not in in_phrase and _is_content(word)]
        # A word some vocabulary knows as it is is no typo: "pasang" is not "padang" misspelt.
        typo = {word: not (self.common.has(word) or any(v.has(word) for v in self.vocabularies)) for word in content}
        candidates: list[Match] = []
        best: tuple[int, float, Match] | None = None
        for number in sorted(range(len(self.entries)), key=lambda number: -scores[number]):
            vocabulary, topic = self.vocabularies[number], self.topics[number]
            uncovered = tuple(word for word in content
                              if not (vocabulary.knows(word, typo[word]) or self.common.knows(word, typo[word])))
            own = sum(1 for word in content if topic.knows(word, typo[word]) and not self.common.has(word))
            answers = not uncovered and own > 0 and scores[number] >= self.min_similarity
            candidate = Match(self.entries[number], scores[number], answers, uncovered)
            candidates.append(candidate)
            if answers and (best is None or (own, scores[number]) > best[:2]):
                best = (own, scores[number], candidate)
        if best is None:
            return candidates
        return [best[2], *(candidate for candidate in candidates if candidate is not best[2])]


def _words_of(text: str) -> list[str]:
    """The normalised words of `text` and the words as written ("ongkir" is also "ongkos kirim")."""
    written = re.findall(r"[^\W\d_]+", text.lower())
    return [word for word in (*words(text), *written) if word.isalpha() and len(word) > 1]


def _is_content(word: str) -> bool:
    if len(word) < 2 or not word.isalpha() or word in _FORM or word in _FILLER:
        return False
    return not any(stem in _FORM for stem in stems(word) if len(stem) >= 4)


def _clean(text: str) -> str:
    # "?" and "!" tell the classifier a question is asked; here every text is one, so they are noise.
    kept: list[str] = []
    for word in words(text):
        if len(word) > 5 and word.endswith("nya"):  # "ongkirnya" is "ongkir", which the lexicon spells out
            kept.extend(words(word[:-3]))
        else:
            kept.append(word)
    return " ".join(word for word in kept if word not in _FILLER and word not in ("?", "!"))


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
    match = faq_index(turn.settings.faq).match(turn.message.text)
    answered = match is not None and match.answers
    _log(turn, match, answered)
    name = turn.customer.name or ""
    if match is None or not answered:
        # Honest: no entry answers this, so no entry is sent; a person can, and the button asks for one.
        return [turn.reply("faq_no_answer", buttons=(turn.button("button_agent", "intent:talk_to_agent"),),
                           name=name)]
    texts = {str(language): text for language, text in match.entry.answer.items()}
    answer = render(texts.get(turn.language) or texts[turn.settings.default_language],
                    {"company": turn.settings.company.name, "name": name})
    turn.extra["faq_id"] = match.entry.id
    return [turn.reply("faq_answer", name=name, answer=answer)]


def answered_if_covered(turn: Turn) -> list[Reply] | None:
    """The FAQ's answer when an entry covers the message, else None (nothing logged; the next route, the
    fallback, answers). For messages no other route took, which the classifier did not read as a question: an
    entry an editor has just added in the console (handlers/knowledge.py) may be on a topic the classifier was
    never trained on ("ada lowongan kerja untuk kurir?" reads as out of scope), and the entry's own words still
    answer it. The coverage rule is the one `ask_info` uses, so a message no entry covers is still "not
    understood"."""
    if turn.message.button_payload or not turn.message.text.strip():
        return None
    match = faq_index(turn.settings.faq).match(turn.message.text)
    if match is None or not match.answers:
        return None
    return answer_question(turn)


def _log(turn: Turn, match: Match | None, answered: bool) -> None:
    """Keep which entry answered (or came nearest, and which words it did not cover) with the message: the
    interaction log shows it, and questions the FAQ missed can be found to write new entries or terms."""
    row = turn.session.get(Message, turn.message_id)
    if row is None:
        return
    nearest = None if match is None else {"id": match.entry.id, "similarity": round(match.similarity, 3),
                                          "uncovered": list(match.uncovered)}
    row.meta = {**(row.meta or {}), "faq": {"answered": answered, "nearest": nearest}}


ROUTES = [Route(answer_question, intent="ask_info")]
# Before the fallback: whatever no other route took, if an FAQ entry covers it (see `answered_if_covered`).
LAST_CHANCE_ROUTES = [Route(answered_if_covered, payload_prefix="")]
