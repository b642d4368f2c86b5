"""How negative, positive or angry one customer message is, from a word list (Bahasa Indonesia and English).

Used by the conversation core to hand an upset VIP to a human (VIP-2.3, VIP-4.1) and kept with each
inbound message in `messages.meta["nlu"]["sentiment"]` for agents and reports.

The message goes through `nlu.normalise.words` first, so chat spellings ("gak puas", "kesel bgt",
"😡") meet the lexicon (`nlu/lexicon/sentiment_id_en.tsv`) in one canonical form. Then, in one pass:

1. Terms are matched longest first (phrases of up to four words beat their words: "tidak apa apa").
   A word not in the list is tried without a clitic ("pelayanannya" -> "pelayanan", "kecewanya" -> "kecewa").
2. A negator up to two words before a feeling word flips it: a positive word becomes negative
   ("tidak puas", "kurang ramah", "not happy"), a negative one only faintly positive ("tidak buruk").
   A negated anger word is neither angry nor kind ("tidak marah").
3. An intensifier next to a feeling word (either side, one word apart at most; the nearest word) multiplies it:
   "sangat kecewa", "kecewa banget", "very happy"; softeners ("agak") multiply by less than one.
4. Shouting, read from the raw text: one word in capitals among lower-case counts half again; a message
   in capitals or with "!!"/"???" makes the feeling stronger. Capitals *and* repeated marks with no
   kind word ("KENAPA BELUM DIKIRIM JUGA???") are angry on their own.
5. The sum is squashed into [-1, 1] (x / sqrt(x² + 8), as VADER does), so one "kecewa" is about -0.66.

It is a word list, not a model: irony and context escape it. That is acceptable for its one decision
(should a person look at this VIP's message?) and it costs a few microseconds.
"""

from __future__ import annotations

import math
import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from nlu.normalise import LexiconError, words

LEXICON_PATH = Path(__file__).parent / "lexicon" / "sentiment_id_en.tsv"
Kind = Literal["word", "anger", "negator", "intensifier"]
Label = Literal["negative", "neutral", "positive"]
KINDS: tuple[Kind, ...] = ("word", "anger", "negator", "intensifier")

MAX_PHRASE = 4
NEGATOR_REACH = 2  # words allowed between a negator and the feeling word it turns
INTENSIFIER_REACH = 1  # words allowed between an intensifier and its feeling word
NEGATED_NEGATIVE = -0.3  # "tidak buruk" is faint praise, not praise
EMPHASIS = 1.5  # one word in capitals among lower-case ones
SHOUTING = 1.3  # the whole message in capitals, or "!!" / "???"
IMPATIENCE = -2.0  # capitals and repeated marks with nothing kind in them
SQUASH = 8.0
LABEL_AT = 0.2  # |score| from which a message is negative or positive rather than neutral
_CLITICS = ("nya", "lah", "kah", "pun")
_LETTER_WORD = re.compile(r"[^\W\d_]{2,}")
_REPEATED_MARKS = re.compile(r"[!?]\s*[!?]")


@dataclass(frozen=True)
class Term:
    weight: float
    kind: Kind


@dataclass(frozen=True)
class Sentiment:
    """One message's tone: score from -1 (very negative) to 1 (very positive), a label, and whether it is angry."""

    score: float
    label: Label
    angry: bool
    cues: tuple[str, ...] = ()  # the terms and signals that counted, for agents reading the log

    @property
    def negativity(self) -> float:
        """0 for a neutral or kind message, up to 1 for a very negative one."""
        return max(0.0, -self.score)

    def as_meta(self) -> dict[str, Any]:
        return {"score": round(self.score, 3), "label": self.label, "angry": self.angry, "cues": list(self.cues)}


NEUTRAL = Sentiment(0.0, "neutral", False)


def load_lexicon(path: Path = LEXICON_PATH) -> dict[tuple[str, ...], Term]:
    """Read the sentiment file: normalised term (as a word tuple) -> weight and kind."""
    terms: dict[tuple[str, ...], Term] = {}
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = unicodedata.normalize("NFKC", raw.split("#", 1)[0]).strip()
        if not line:
            continue
        fields = [field.strip() for field in line.split("\t")]
        if len(fields) not in (2, 3):
            raise LexiconError(f"{path.name}:{number}: expected TERM<tab>WEIGHT[<tab>KIND], got {line!r}")
        key = tuple(words(fields[0]))
        if not key or len(key) > MAX_PHRASE:
            raise LexiconError(f"{path.name}:{number}: {fields[0]!r} must be 1 to {MAX_PHRASE} words")
        try:
            weight = float(fields[1])
        except ValueError:
            raise LexiconError(f"{path.name}:{number}: weight {fields[1]!r} is not a number") from None
        kind = fields[2] if len(fields) == 3 and fields[2] else "word"
        if kind not in KINDS:
            raise LexiconError(f"{path.name}:{number}: kind {kind!r} is not one of {', '.join(KINDS)}")
        if kind in ("word", "anger") and not -3 <= weight <= 3:
            raise LexiconError(f"{path.name}:{number}: a feeling word's weight is -3..3, got {weight}")
        if key in terms:
            raise LexiconError(f"{path.name}:{number}: {fields[0]!r} is listed twice")
        terms[key] = Term(weight, kind)  # kind was checked against KINDS above
    return terms


LEXICON = load_lexicon()


@lru_cache(maxsize=20_000)
def _single(word: str) -> Term | None:
    term = LEXICON.get((word,))
    if term is not None:
        return term
    for clitic in _CLITICS:
        if word.endswith(clitic) and len(word) - len(clitic) >= 3:
            term = LEXICON.get((word[: -len(clitic)],))
            if term is not None:
                return term
    return None


@dataclass(frozen=True)
class _Match:
    start: int
    end: int  # exclusive
    text: str
    term: Term


def _matches(tokens: list[str]) -> list[_Match]:
    found: list[_Match] = []
    i = 0
    while i < len(tokens):
        for n in range(min(MAX_PHRASE, len(tokens) - i), 0, -1):
            key = tuple(tokens[i : i + n])
            term = LEXICON.get(key) if n > 1 else _single(key[0])
            if term is not None:
                found.append(_Match(i, i + n, " ".join(key), term))
                i += n
                break
        else:
            i += 1
    return found


def _shouted(text: str) -> tuple[bool, set[str]]:
    """(the message is written in capitals, the words written in capitals in an otherwise normal message)."""
    letters = _LETTER_WORD.findall(text)
    capitals = [w for w in letters if w.isupper()]
    all_caps = len(capitals) >= 2 and len(capitals) >= 0.6 * len(letters) and any(len(w) >= 3 for w in capitals)
    if all_caps:
        return True, set()
    return False, {w.lower() for w in capitals if len(w) >= 3}


@lru_cache(maxsize=1024)  # the pipeline logs the tone and the handoff rules read it: one computation
def analyse(text: str) -> Sentiment:
    """The tone of one message. Pure and fast: safe to call for every inbound message."""
    tokens = words(text)
    if not tokens:
        return NEUTRAL
    matches = _matches(tokens)
    all_caps, emphasised = _shouted(text)
    repeated = bool(_REPEATED_MARKS.search(text))
    total, anger, positive = 0.0, False, False
    cues: list[str] = []
    feelings = [m for m in matches if m.term.kind in ("word", "anger") and m.term.weight != 0]
    boosts = _boosts(matches, feelings)
    for match in feelings:
        value, angry_word = match.term.weight, match.term.kind == "anger"
        negator = _negator_before(matches, match)
        if negator is not None:
            # "tidak marah" is calm, not praise; "tidak buruk" is faint praise; "tidak puas" is negative.
            value = 0.0 if angry_word else value * (negator.term.weight if value > 0 else NEGATED_NEGATIVE)
            angry_word = False
            cues.append(f"{negator.text} {match.text}")
        else:
            cues.append(match.text)
        for intensifier, target in boosts:
            if target is match:
                value *= intensifier.term.weight
        if emphasised and any(word in emphasised for word in match.text.split()):
            value *= EMPHASIS
        total += value
        anger = anger or (angry_word and value < 0)
        positive = positive or value > 0
    if all_caps and repeated and total <= 0 and not positive:
        total += IMPATIENCE
        anger = True
        cues.append("shouting")
    elif all_caps or repeated:
        total *= SHOUTING
        if total != 0:
            cues.append("shouting" if all_caps else "!!")
    score = total / math.sqrt(total * total + SQUASH)
    label: Label = "negative" if score <= -LABEL_AT else "positive" if score >= LABEL_AT else "neutral"
    angry = score < 0 and (anger or ((all_caps or repeated) and score <= -0.5))
    if angry:
        label = "negative"
    return Sentiment(score, label, angry, tuple(cues))


def _negator_before(matches: list[_Match], feeling: _Match) -> _Match | None:
    """The negator that turns this feeling word: close before it, with no other feeling word between."""
    for other in reversed(matches):
        if other.end > feeling.start:
            continue
        if feeling.start - other.end > NEGATOR_REACH:
            return None
        if other.term.kind == "negator":
            return other
        if other.term.kind in ("word", "anger"):
            return None
    return None


def _boosts(matches: list[_Match], feelings: list[_Match]) -> list[tuple[_Match, _Match]]:
    """Each intensifier with the one feeling word it strengthens: the nearest, the one before it on a tie
    ("kecewa banget": Indonesian puts it after; "very happy": English before)."""
    pairs = []
    for intensifier in (m for m in matches if m.term.kind == "intensifier"):
        best: tuple[int, int, _Match] | None = None
        for feeling in feelings:
            if feeling.end <= intensifier.start:
                gap, after = intensifier.start - feeling.end, 0
            elif intensifier.end <= feeling.start:
                gap, after = feeling.start - intensifier.end, 1
            else:
                continue
            if gap <= INTENSIFIER_REACH and (best is None or (gap, after) < best[:2]):
                best = (gap, after, feeling)
        if best is not None:
            pairs.append((intensifier, best[2]))
    return pairs
