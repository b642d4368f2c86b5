"""Bring informal Indonesian chat text to one canonical spelling before the classifier sees it.

"Tolonggg kak, pesenan aku blm nyampe2 😡" becomes
"tolong kakak pesanan aku belum sampai sampai emosi_negatif".

The steps, in order (each is cheap; the whole thing is one pass over the tokens):

1. Unicode NFKC (full-width letters, ligatures, superscript "²"), then lower-case.
2. Web addresses become the token "url" and e-mail addresses "email": the classifier needs to know a
   link or an address is there, never which one (the entity module reads the raw text for that).
3. Emoji and emoticons that say the customer is upset (angry, crying, sad, thumbs down, ":(")
   become "emosi_negatif", the one feeling that changes the intent (complaint). Every other emoji
   is dropped: smileys, hearts, 🙏 and 👍 decorate greetings, thanks, requests and answers alike,
   and an emoji-only message then normalises to "" which the interpreter answers as out_of_scope.
4. Tokens are cut on whitespace and punctuation. Punctuation is dropped, except that a run of "?"
   or "!" is kept as one "?" or "!" token (questions and exclamations carry intent). Punctuation
   *inside* a token that has a digit is kept, so amounts, dates, phone numbers and order ids stay
   whole: "rp1.500.000", "1,5jt", "12/12/2026", "inv-2026-00123". Between letters it splits:
   "kak,pesanan" -> "kakak pesanan", "barang-barang" -> "barang barang".
5. Reduplication written with a 2 is spelt out: "kirim2" -> "kirim kirim", "kira2nya" -> "kira kiranya".
6. Each word goes through the slang lexicon (nlu/lexicon/slang_id.tsv): "gk" -> "tidak", "tq" -> "terima kasih".
7. Elongations are squeezed: a letter written 3+ times becomes two if the result is a known word
   ("maaaaf" -> "maaf"), else one ("tolonggg" -> "tolong", "haloooo" -> "halo"). Chat elongates
   far more often than Indonesian doubles a letter, and the doubling words are a closed list kept in
   the lexicon, so one letter is the default. A doubled final letter is also dropped when only the
   shorter word is known ("kakk" -> "kakak", "yaa" -> "ya"). Laughter ("wkwkwk", "hahaha") becomes "haha".
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache
from itertools import product
from pathlib import Path

LEXICON_PATH = Path(__file__).parent / "lexicon" / "slang_id.tsv"


class LexiconError(ValueError):
    """The lexicon file has a line the normaliser cannot use; the message names the line."""


def load_lexicon(path: Path = LEXICON_PATH) -> tuple[dict[str, str], frozenset[str]]:
    """Read the slang file: (informal -> canonical, every word the normaliser treats as known)."""
    lexicon: dict[str, str] = {}
    known: set[str] = set()
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = unicodedata.normalize("NFKC", raw.split("#", 1)[0]).strip().lower()
        if not line:
            continue
        informal, _, canonical = line.partition("\t") if "\t" in line else line.partition(" ")
        informal, canonical = informal.strip(), " ".join(canonical.split())
        if not _WHOLE_TOKEN.fullmatch(informal):
            raise LexiconError(f"{path.name}:{number}: {informal!r} is not one token as the normaliser cuts text")
        if not canonical:
            known.add(informal)
            continue
        if lexicon.get(informal, canonical) != canonical:
            raise LexiconError(
                f"{path.name}:{number}: {informal!r} is listed twice ({lexicon[informal]!r}, {canonical!r})"
            )
        lexicon[informal] = canonical
        known.add(informal)
        known.update(canonical.split())
    return lexicon, frozenset(known)


_JOINERS = r"[.,/:'_&-]"
_WHOLE_TOKEN = re.compile(rf"[^\W_]+(?:{_JOINERS}+[^\W_]+)*%?")
# The anchors make each pattern start at most once per run of characters: linear on 10,000-char input.
_EMAIL = re.compile(r"(?<![\w.+-])[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_URL = re.compile(
    r"(?:\b(?:https?://|www\.)\S+)"
    r"|(?<![\w.@-])[a-z0-9][a-z0-9-]*(?:\.[a-z0-9-]+)*\.(?:com|id|net|org|io|ly|app|shop|store|link)\b(?:/\S*)?"
)
_NEGATIVE_EMOTICON = re.compile(r"[:;=]['’]?-?[(\[]+|[)\]]+-?['’]?[:;=]|t_t|;_;")
_NEGATIVE_EMOJI = frozenset(
    "\U0001f620\U0001f621\U0001f92c\U0001f624\U0001f47f"  # angry, pouting, cursing, huffing, imp
    "\U0001f622\U0001f62d\U0001f625\U0001f630\U0001f61e\U0001f614\U0001f61f\U0001f615\U0001f641\u2639"  # sad, crying
    "\U0001f629\U0001f62b\U0001f623\U0001f616\U0001f612\U0001f644\U0001f611\U0001f610"  # weary, unamused, eye-roll
    "\U0001f494\U0001f44e\U0001f92e\U0001f922\U0001f4a2"  # broken heart, thumbs down, vomiting, nausea, anger
)
_PIECE = re.compile(rf"{_WHOLE_TOKEN.pattern}|[?!]+")
_SPLIT = re.compile(f"{_JOINERS}+")
_DIGIT = re.compile(r"\d")
_RUN3 = re.compile(r"(\w)\1{2,}")  # only ever applied to alphabetic words
_REDUPLICATION = re.compile(r"([^\W\d_]{3,})2(an|nya|kan|in|i|lah|pun|ku|mu)?")
_LAUGHTER = re.compile(
    r"(?:w?k?(?:wk)+w?|(?:ha){2,}h?|(?:he){2,}h?|(?:hi){2,}h?|(?:xi){2,}|(?:ak){3,}|awok(?:awok)+|lol|lmao|rofl)"
)
_TRAILING = ".,;:!?\"')]}*~"
_PLACEHOLDERS = frozenset({"url", "email", "emosi_negatif"})
# "lg" is "lagi" in chat, but the LG brand right after one of the products we sell.
_BRAND_CONTEXT = frozenset(
    "tv televisi kulkas ac mesin cuci monitor speaker soundbar microwave oven laptop merk merek produk".split()
)
# "no" is English "no", but "nomor" right before one of these.
_NUMBER_CONTEXT = frozenset(
    "hp handphone resi rek rekening telepon whatsapp pesanan ktp va pelanggan member akun".split()
)

LEXICON, KNOWN_WORDS = load_lexicon()


def normalise(text: str) -> str:
    """The canonical, space-separated form of a chat message for the classifier ("" if nothing is left)."""
    return " ".join(words(text))


def words(text: str) -> list[str]:
    """The canonical words of a message, in order (multi-word expansions already split)."""
    if not text:
        return []
    if not text.isascii():
        text = unicodedata.normalize("NFKC", text).replace("’", "'")
    out: list[str] = []
    # Most chunks between spaces are a plain word, perhaps with a comma or "?" after it: those skip
    # the regular expressions, which keeps a typical message well under 50 µs.
    for chunk in text.lower().split():
        if chunk.isalpha():
            _add_word(out, chunk)
            continue
        core = chunk.rstrip(_TRAILING)
        if core[-1:] == "2" and len(core) > 3 and core[:-1].isalpha():  # "kirim2", the usual reduplication
            _add_word(out, core[:-1])
            _add_word(out, core[:-1])
            _add_tail(out, chunk[len(core) :])
        elif core and core.isalpha():
            _add_word(out, core)
            _add_tail(out, chunk[len(core) :])
        else:
            _add_chunk(out, chunk)
    return out


def _add_tail(out: list[str], tail: str) -> None:
    if "?" in tail:
        out.append("?")
    elif "!" in tail:
        out.append("!")


def _add_chunk(out: list[str], chunk: str) -> None:
    """A chunk with digits, symbols, emoji or inner punctuation: cut it into tokens first."""
    if not chunk.isascii():
        if not any(c.isalnum() for c in chunk):  # emoji and symbols only, the usual case
            if any(c in _NEGATIVE_EMOJI for c in chunk) and out[-1:] != ["emosi_negatif"]:
                out.append("emosi_negatif")
            return
        chunk = "".join(" emosi_negatif " if c in _NEGATIVE_EMOJI else c for c in chunk)
    if "@" in chunk:
        chunk = _EMAIL.sub(" email ", chunk)
    if "." in chunk:
        chunk = _URL.sub(" url ", chunk)
    if _NEGATIVE_EMOTICON.fullmatch(chunk):
        out.append("emosi_negatif")
        return
    for token in _PIECE.findall(chunk):
        first = token[0]
        if first == "?" or first == "!":
            out.append("?" if "?" in token else "!")
        elif token in _PLACEHOLDERS:
            out.append(token)
        elif token in LEXICON or token in KNOWN_WORDS or token.isalpha():
            _add_word(out, token)
        elif _DIGIT.search(token):
            reduplicated = _REDUPLICATION.fullmatch(token)
            if reduplicated is None:
                out.append(token)
            else:
                base, suffix = reduplicated.group(1), reduplicated.group(2) or ""
                _add_word(out, base)
                _add_word(out, base + suffix)
        else:
            for part in _SPLIT.split(token.rstrip("%")):
                if part:
                    _add_word(out, part)


def _add_word(out: list[str], word: str) -> None:
    """Append the canonical form of one word, with the two context rules that need its neighbours."""
    if word == "lg" and out and out[-1] in _BRAND_CONTEXT:
        out.append(word)
        return
    canonical = _word(word)
    if " " in canonical:
        out.extend(canonical.split(" "))
    else:
        out.append(canonical)
    if canonical in _NUMBER_CONTEXT and len(out) > 1 and out[-2] == "no":
        out[-2] = "nomor"


@lru_cache(maxsize=20_000)  # chat vocabulary repeats; a cached word costs a dict look-up
def _word(word: str) -> str:
    """One alphabetic word in canonical form (may expand to several words separated by spaces)."""
    canonical = LEXICON.get(word)
    if canonical is not None:
        return canonical
    if word in KNOWN_WORDS:
        return word
    return _unknown(word)


def _unknown(word: str) -> str:
    """A word neither in the lexicon nor known as written: squeeze elongations, recognise laughter."""
    if _RUN3.search(word):
        word = _squeeze(word)
        canonical = LEXICON.get(word)
        if canonical is not None:
            return canonical
        if word in KNOWN_WORDS:
            return word
    if word[:1] in "hwkxalr" and _LAUGHTER.fullmatch(word):
        return "haha"
    if len(word) >= 3 and word[-1] == word[-2] and word[:-1] in KNOWN_WORDS:
        return LEXICON.get(word[:-1], word[:-1])
    return word


def _squeeze(word: str) -> str:
    """Letters written 3+ times: the first known spelling with each run at two or one letters, else one."""
    pieces = _RUN3.split(word)  # text, run letter, text, run letter, ..., text
    texts, letters = pieces[::2], pieces[1::2]
    widths = product((2, 1), repeat=len(letters)) if len(letters) <= 3 else iter([(2,) * len(letters)])
    for choice in widths:
        candidate = _join(texts, letters, choice)
        if candidate in KNOWN_WORDS:
            return candidate
    return _join(texts, letters, (1,) * len(letters))


def _join(texts: list[str], letters: list[str], widths: tuple[int, ...]) -> str:
    return (
        "".join(text + letter * width for text, letter, width in zip(texts, letters, widths, strict=False)) + texts[-1]
    )
