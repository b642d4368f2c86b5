"""Entities in a customer's message, normalised so that handlers never parse text again.

Each kind has a regex that proposes candidate spans and a small function that turns a span into
its value or rejects it (an invalid phone, 31 February, "saya kecewa"). `extract_entities` runs
them all and keeps the longest non-overlapping spans; docs/nlu.md is the contract for the values.

Dates, relative to the moment the message arrived in Asia/Jakarta:
- hari ini/today, besok/besuk/bsk/tomorrow (+1), lusa (+2), kemarin/yesterday (-1),
  minggu depan/next week (+7), minggu lalu/last week (-7);
- "jumat", "hari jumat", "on friday", "jumat depan", "next friday": the first such day strictly
  after today (1-7 days ahead), so on Monday 23 Nov 2026 "senin depan" is 30 Nov and "next
  friday" 27 Nov; "jumat ini"/"this friday": today or the next 6 days; "jumat lalu"/"last
  friday": 1-7 days back; "jumat minggu depan"/"friday next week": that day in the next Monday-to-
  Sunday week (4 Dec). "minggu" alone means week, so Sunday needs "hari minggu" or "ahad";
- absolute dates ("12 Des", "Dec 12th", "12/12/2026", "2026-12-12") are read by dateparser, day
  first; without a year they are the next such date on or after today.
"""

from __future__ import annotations

import re
import string
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from zoneinfo import ZoneInfo

from bot.contacts import normalise_email, normalise_phone
from nlu.interpretation import Entity

# Customer messages are short; a pasted log or a spam wall is not worth reading to the end, and the
# cap bounds the work (regexes are linear, but each phone or date candidate costs a library call).
MAX_SCAN_CHARS = 2000
MAX_PHONE_CHECKS = 40  # ~0.1 ms each
MAX_DATE_PARSES = 5  # ~1.5 ms each
# On equal spans the more specific reading wins: an email's digits are not a phone, "01-12-2026" is
# a date, a valid phone is not a tracking number.
_RANK = {"email": 0, "date": 1, "phone": 2, "order_id": 3, "amount": 4, "person_name": 5}


_DIGIT = re.compile(r"\d")


@dataclass(frozen=True)
class _Found:
    entity: str
    value: str | int
    start: int
    end: int


def extract_entities(text: str, now: datetime | None = None, timezone: str = "Asia/Jakarta") -> tuple[Entity, ...]:
    """All entities in `text`, sorted by start, non-overlapping, with spans into the original text.

    `now` is when the message arrived (aware, or naive local time in `timezone`); it anchors dates.
    """
    scanned = text[:MAX_SCAN_CHARS]
    if not scanned.strip():
        return ()
    local_now = _local_now(now, timezone)
    found = [*_emails(scanned), *_amounts(scanned), *_dates(scanned, local_now), *_person_names(scanned)]
    if _DIGIT.search(scanned):  # most messages have no digits: skip the digit-only extractors
        found += [*_phones(scanned), *_order_ids(scanned)]
    kept: list[_Found] = []
    for f in sorted(found, key=lambda f: (f.start - f.end, _RANK[f.entity], f.start)):
        if all(f.end <= k.start or f.start >= k.end for k in kept):
            kept.append(f)
    kept.sort(key=lambda f: f.start)
    return tuple(Entity(f.entity, f.value, text[f.start:f.end], f.start, f.end) for f in kept)


def warm_up() -> None:
    """Load dateparser and its id/en locales now (~0.4 s) rather than on the first message with a date."""
    _parse_date_span("12 Desember 2026", datetime(2026, 1, 1))


def _local_now(now: datetime | None, timezone: str) -> datetime:
    zone = ZoneInfo(timezone)
    if now is None:
        now = datetime.now(zone)
    elif now.tzinfo is not None:
        now = now.astimezone(zone)
    return now.replace(tzinfo=None)


# --- email ---------------------------------------------------------------------------------------

# Starting only after a non-email character keeps the scan linear on long runs of letters.
_EMAIL = re.compile(
    r"(?<![\w.%+-])[\w.%+-]{1,64}@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.){1,8}[A-Za-z]{2,24}(?![\w-])"
)


def _emails(text: str) -> Iterator[_Found]:
    if "@" not in text:
        return
    for m in _EMAIL.finditer(text):
        value = normalise_email(m.group())
        if value:
            yield _Found("email", value, m.start(), m.end())


# --- phone ---------------------------------------------------------------------------------------

# A run of digits with single separators, optionally "+" or "(021)" in front; phonenumbers decides.
_PHONE_SHAPE = re.compile(
    r"(?<![\w+#@./-])(?:\+\s?|\(\s?)?\d(?:\d|[ .-](?=[\d(])|\)\s?(?=\d)|\((?=\d)){6,24}\d(?![\w@])"
)
_PHONE_GROUP = re.compile(r"(?:\+\s?)?\(?\d+\)?")
_MAX_PHONE_GROUPS = 5  # "+62 812 3456 7890" has 4; more groups are several numbers run together


def _phones(text: str) -> Iterator[_Found]:
    budget = MAX_PHONE_CHECKS
    for m in _PHONE_SHAPE.finditer(text):
        groups = [(g.start() + m.start(), g.end() + m.start()) for g in _PHONE_GROUP.finditer(m.group())]
        i = 0
        # "0812 3456 7890 2 unit" shapes as one run: try the longest valid prefix at each group.
        while i < len(groups) and budget > 0:
            for j in range(min(len(groups), i + _MAX_PHONE_GROUPS) - 1, i - 1, -1):
                start, end = groups[i][0], groups[j][1]
                if j > i and end - groups[j][0] < 3:
                    continue  # no format ends in a 1-2 digit group: "0812 3456 7890 2 unit"
                digits = sum(c.isdigit() for c in text[start:end])
                if not 8 <= digits <= 15 or not text[start:end].startswith(("+", "(", "0", "62")):
                    continue
                budget -= 1
                value = _phone_value(text[start:end])
                if value:
                    yield _Found("phone", value, start, end)
                    i = j
                    break
                if budget <= 0:
                    break
            i += 1


def _phone_value(raw: str) -> str | None:
    # "62812..." is already international; read with region ID it would gain a second 62.
    return normalise_phone("+" + raw if raw.startswith("62") else raw)


# --- order_id ------------------------------------------------------------------------------------

_SEGMENT = r"[A-Z]{0,4}\d[A-Z0-9]{0,15}"  # contains a digit, so "inv 2026 sudah" stops before "sudah"
_INVOICE = re.compile(
    rf"(?<![\w/-])INV[-/.\s]?{_SEGMENT}(?:(?:[-/.]|\s(?=\d{{3}})){_SEGMENT}|/[A-Z]{{1,6}}(?=/\d|/[IVXLC]+/)){{0,6}}(?!\w)",
    re.I,
)  # INV-2026-00123, INV/2026/XI/0042, and the marketplace form INV/20260101/MPL/1234567890
_HASH_CODE = re.compile(r"(?<![\w&#])#(?=[A-Za-z]{0,11}\d)([A-Za-z0-9]{5,12})(?!\w)")
_HASHTAG = re.compile(r"[a-z]{4,}\d+|\d+[a-z]{4,}")  # "#promo2026", "#1212sale"
# Courier tracking numbers: J&T JP1234567890, Pos RR123456789ID, ID Express IDE701234567890, Shopee Express
# SPXID012345678901 — letters then digits. "Rp1500000000" is an amount, not a parcel.
_TRACKING = re.compile(r"(?<!\w)(?!(?:rp|idr|usd)\d)[A-Z]{2,5}\d{8,16}(?:[A-Z]{2})?(?!\w)", re.I)
_COURIERS = r"jne|jnt|j&t|sicepat|anteraja|pos|tiki|ninja|spx|lion|wahana|idexpress|sap|rex|lex"
# A number after a word that introduces one ("resi", "no pesanan", "awb", or a courier's name): digits
# (SiCepat 000123456789, JNE 8803042010000123, AnterAja 10002345678901, also in groups "0115 1234 5678 9012")
# or a code of letters and at least six digits (JNE CGK1A01234567890, Ninja NLIDAP12345678, Shopee
# 220101ABCDEF12, Lion 11LP1234567890123).
_INTRODUCED_NUMBER = re.compile(
    rf"(?<!\w)(?:resi|awb|tracking|lacak|pesanan|order|orderan|invoice|transaksi|{_COURIERS})(?:nya|ku|mu)?"
    r"(?:\W{1,3}(?:no|nomor|nomer|nmr|number|num|id|kode|code|saya|sy|aku|ku|anda|is|adalah|express|parcel|"
    rf"{_COURIERS})(?!\w)){{0,3}}"
    r"\W{1,3}(\d{10,16}|\d{3,6}(?:[ -]\d{3,6}){1,4}"  # digits, whole or in groups
    r"|(?=[A-Z0-9]{0,18}\d(?:[A-Z]*\d){5})(?=\d*[A-Z])[A-Z0-9]{8,24})(?!\w)",  # letters and 6+ digits
    re.I,
)


def _order_ids(text: str) -> Iterator[_Found]:
    for m in _INVOICE.finditer(text):
        if sum(c.isdigit() for c in m.group()) >= 4:  # "inv 2 lembar" is not an invoice number
            yield _Found("order_id", m.group(), m.start(), m.end())
    if "#" in text:
        for m in _HASH_CODE.finditer(text):
            if not _HASHTAG.fullmatch(m.group(1)):
                yield _Found("order_id", m.group(1), m.start(), m.end())
    for m in _TRACKING.finditer(text):
        if not _is_phone_digits(m.group().strip(string.ascii_letters)):  # "wa081234567890" is a phone
            yield _Found("order_id", m.group(), m.start(), m.end())
    for m in _INTRODUCED_NUMBER.finditer(text):
        number = m.group(1)
        digits = "".join(c for c in number if c.isdigit())
        if not (number.isalnum() and not number.isdigit()):  # digits, whole or in groups
            if not 10 <= len(digits) <= 20 or _is_phone_digits(digits):  # "resi 0812 3456 7890" is a phone
                continue
        yield _Found("order_id", number, m.start(1), m.end(1))


def _is_phone_digits(digits: str) -> bool:
    # Indonesian numbers written without "+" start with 0 or 62; anything else cannot be one.
    return digits.startswith(("0", "62")) and _phone_value(digits) is not None


# --- amount --------------------------------------------------------------------------------------

_SCALES = {
    "ribu": 1000, "ribuan": 1000, "rb": 1000, "rbu": 1000, "rebu": 1000, "k": 1000, "thousand": 1000,
    "juta": 10**6, "jutaan": 10**6, "jt": 10**6, "jta": 10**6, "million": 10**6, "mn": 10**6, "mio": 10**6, "m": 10**6,
    "miliar": 10**9, "milyar": 10**9, "billion": 10**9, "triliun": 10**12,
}
_AMOUNT = re.compile(
    r"(?<![\w.,])(?:(?P<currency>rp\.?|idr)\s?)?"
    r"(?P<number>\d{1,3}(?:[.,]\d{3})+(?:[.,]\d{1,2})?|\d{1,15}(?:[.,]\d{1,2})?)(?!\d)"
    rf"(?:\s?(?P<scale>{'|'.join(sorted(_SCALES, key=len, reverse=True))})(?!\w))?"
    r"(?:\s?(?P<suffix>rupiah|perak|idr)(?!\w))?",
    re.I,
)
_UNITS = {"satu": 1, "dua": 2, "tiga": 3, "empat": 4, "lima": 5, "enam": 6, "tujuh": 7, "delapan": 8, "sembilan": 9}
_WHOLE = {"sepuluh": 10, "sebelas": 11, "seratus": 100}
_FACTORS = {"belas": 0, "puluh": 10, "ratus": 100}  # belas adds ten: "dua belas" = 12
_SE_SCALES = {"seribu": 1000, "sejuta": 10**6, "semiliar": 10**9}
_WORD_SCALES = {w: _SCALES[w] for w in ("ribu", "rb", "rbu", "rebu", "juta", "jt", "miliar", "milyar", "triliun")}
_NUMBER_WORDS = [*_UNITS, *_WHOLE, *_FACTORS, *_SE_SCALES, *_WORD_SCALES, "setengah"]
_NUMBER_WORD = rf"(?:{'|'.join(sorted(_NUMBER_WORDS, key=len, reverse=True))})(?!\w)"
_WORD_AMOUNT = re.compile(
    rf"(?<!\w){_NUMBER_WORD}(?:[\s-]+{_NUMBER_WORD}){{0,12}}(?:\s+(?P<suffix>rupiah|perak))?", re.I
)


def _amounts(text: str) -> Iterator[_Found]:
    for m in _AMOUNT.finditer(text) if _DIGIT.search(text) else ():
        scale_word = m.group("scale")
        # "5m" is a cable length; "m" counts as million only next to a currency, and "Rp 2 M" is miliar.
        if scale_word and scale_word.lower() == "m" and not m.group("currency"):
            continue
        if not (m.group("currency") or scale_word or m.group("suffix")):
            continue  # "2 unit", "tv 43 inch", "tahun 2025"
        number = _parse_number(m.group("number"))
        if number is None:
            continue
        scale = 10**9 if scale_word == "M" else _SCALES[scale_word.lower()] if scale_word else 1
        yield _Found("amount", _rupiah(number * scale), m.start(), m.end())
    for m in _WORD_AMOUNT.finditer(text):
        words = [w.lower() for w in re.split(r"[\s-]+", m.group()) if w]
        if m.group("suffix"):
            words.pop()
        value = _words_value(words)
        if value is not None and (m.group("suffix") or any(w in _WORD_SCALES or w in _SE_SCALES for w in words)):
            yield _Found("amount", _rupiah(value), m.start(), m.end())


def _parse_number(raw: str) -> Decimal | None:
    """'1.500.000,00', '75,000', '1,5', '1.5' -> Decimal: a final group of 1-2 digits is decimals."""
    *head, last = re.split(r"[.,]", raw)
    separators = re.sub(r"\d", "", raw)
    if not head:
        return Decimal(raw)
    if len(last) <= 2:
        whole, thousands, fraction = head, separators[:-1], last
        if thousands and thousands[-1] == separators[-1]:
            return None  # "1.500.00": the same mark cannot be both
    else:
        whole, thousands, fraction = [*head, last], separators, ""
    if len(set(thousands)) > 1 or any(len(g) != 3 for g in whole[1:]):
        return None
    return Decimal("".join(whole) + ("." + fraction if fraction else ""))


def _words_value(words: list[str]) -> Decimal | None:
    """['dua', 'ratus', 'lima', 'puluh', 'ribu'] -> 250000; None if the words are not one number."""
    total = small = Decimal(0)
    pending = 0  # the last bare unit, still waiting for belas/puluh/ratus
    for word in words:
        if word in _UNITS:
            if pending:
                return None  # "dua tiga juta" is a range, not a number
            pending = _UNITS[word]
            small += pending
        elif word in _WHOLE:
            small, pending = small + _WHOLE[word], 0
        elif word in _FACTORS:
            if not pending:
                return None
            small += 10 if word == "belas" else pending * (_FACTORS[word] - 1)
            pending = 0
        elif word == "setengah":
            small, pending = small + Decimal("0.5"), 0
        else:
            scale = _SE_SCALES.get(word) or _WORD_SCALES[word]
            if word in _SE_SCALES:
                small += 1
            if not small:
                return None
            total, small, pending = total + small * scale, Decimal(0), 0
    return total + small


def _rupiah(value: Decimal) -> int:
    return int(value.quantize(Decimal(1), rounding=ROUND_HALF_UP))


# --- date ----------------------------------------------------------------------------------------

_OFFSETS = {
    "hari ini": 0, "today": 0, "besok": 1, "besuk": 1, "bsk": 1, "esok": 1, "tomorrow": 1, "tmrw": 1,
    "lusa": 2, "besok lusa": 2, "day after tomorrow": 2, "kemarin": -1, "kemaren": -1, "kmrn": -1,
    "yesterday": -1, "kemarin lusa": -2, "day before yesterday": -2, "minggu depan": 7, "pekan depan": 7,
    "next week": 7, "minggu lalu": -7, "pekan lalu": -7, "last week": -7,
}
_WEEKDAYS = {
    "senin": 0, "selasa": 1, "rabu": 2, "kamis": 3, "jumat": 4, "jum'at": 4, "jumaat": 4, "sabtu": 5, "minggu": 6,
    "ahad": 6, "monday": 0, "tuesday": 1, "wednesday": 2, "thursday": 3, "friday": 4, "saturday": 5, "sunday": 6,
}
_MONTHS = {
    "januari": 1, "january": 1, "jan": 1, "februari": 2, "february": 2, "pebruari": 2, "feb": 2, "peb": 2,
    "maret": 3, "march": 3, "mar": 3, "april": 4, "apr": 4, "mei": 5, "may": 5, "juni": 6, "june": 6,
    "jun": 6, "juli": 7, "july": 7, "jul": 7, "agustus": 8, "august": 8, "agu": 8, "agt": 8, "ags": 8,
    "aug": 8, "september": 9, "sept": 9, "sep": 9, "oktober": 10, "october": 10, "okt": 10, "oct": 10,
    "november": 11, "nopember": 11, "nov": 11, "nop": 11, "desember": 12, "december": 12, "des": 12, "dec": 12,
}


def _alternatives(words: dict[str, int]) -> str:
    return "|".join(w.replace(" ", r"\s+") for w in sorted(words, key=len, reverse=True))


_OFFSET = re.compile(rf"(?<!\w)(?:{_alternatives(_OFFSETS)})(?!\w)", re.I)
_WEEKDAY = re.compile(
    rf"(?<!\w)(?:(?P<pre>hari|on|next|this|last)\s+)?(?P<day>{_alternatives(_WEEKDAYS)})"
    r"(?:\s+(?P<post>(?:minggu|pekan)\s+depan|next\s+week|depan|ini|lalu))?(?!\w)",
    re.I,
)
_MONTH = rf"(?:{_alternatives(_MONTHS)})"
_ORDINAL = r"(?:st|nd|rd|th)?"
# A weekday in front ("Senin, 7 Desember") joins the span, so it is one date rather than two.
_ABSOLUTE_DATE = re.compile(
    rf"(?<![\w/-])(?:(?:{_alternatives(_WEEKDAYS)}),?\s+)?(?P<date>\d{{1,2}}{_ORDINAL}\s*(?:of\s+)?{_MONTH}(?:,?\s*\d{{4}})?"
    rf"|{_MONTH}(?:\.(?=\s?\d))?\s*\d{{1,2}}{_ORDINAL}(?:,?\s*\d{{4}})?"
    r"|\d{1,2}(?P<sep>[./-])\d{1,2}(?P=sep)\d{4}|\d{4}-\d{1,2}-\d{1,2})(?![\w/-])",
    re.I,
)
# "tanggal 15": the next 15th on or after today ("tanggal 1 kemarin": the last 1st on or before today);
# "tgl 5 mei" is left to _ABSOLUTE_DATE.
_DAY_OF_MONTH = re.compile(
    rf"(?<!\w)(?:tanggal|tgl)\.?\s*(?P<day>\d{{1,2}})(?!\d|\s*[/.-]?\s*(?:\d|{_MONTH}(?!\w)))"
    r"(?P<past>\s+(?:kemarin|kemaren|kmrn|lalu)(?!\w))?",
    re.I,
)
_SPACES = re.compile(r"\s+")
_COUNTED = re.compile(rf"(?:\d|(?<!\w)(?:{'|'.join(_UNITS)}|beberapa|sebelas|sepuluh))\s+$", re.I)


def _dates(text: str, local_now: datetime) -> Iterator[_Found]:
    today = local_now.date()
    for m in _OFFSET.finditer(text):
        counted = m.group()[:1] in "mMpP" and _COUNTED.search(text, max(0, m.start() - 12), m.start())
        if counted:
            continue  # "2 minggu lalu" is two weeks ago, not one
        yield _date(today + timedelta(days=_OFFSETS[_SPACES.sub(" ", m.group().lower())]), m.start(), m.end())
    for m in _WEEKDAY.finditer(text):
        pre, post = (m.group("pre") or "").lower(), _SPACES.sub(" ", (m.group("post") or "").lower())
        weekday = _WEEKDAYS[m.group("day").lower()]
        if m.group("day").lower() == "minggu" and pre != "hari":
            continue  # "minggu" alone is "week": "2 minggu", "minggu depan"
        yield _date(_weekday_date(today, weekday, pre, post), m.start(), m.end())
    if not _DIGIT.search(text):
        return
    for m in _DAY_OF_MONTH.finditer(text):
        day = _day_of_month(today, int(m.group("day")), past=bool(m.group("past")))
        if day is not None:
            yield _date(day, m.start(), m.end())
    for count, m in enumerate(_ABSOLUTE_DATE.finditer(text)):
        if count >= MAX_DATE_PARSES:
            break
        parsed = _parse_date_span(m.group("date"), local_now)
        if parsed is not None:
            yield _date(parsed, m.start(), m.end())


def _date(value: date, start: int, end: int) -> _Found:
    return _Found("date", value.isoformat(), start, end)


def _weekday_date(today: date, weekday: int, pre: str, post: str) -> date:
    ahead = (weekday - today.weekday()) % 7
    if post in {"minggu depan", "pekan depan", "next week"}:
        return today + timedelta(days=7 - today.weekday() + weekday)
    if pre == "this" or post == "ini":
        return today + timedelta(days=ahead)
    if pre == "last" or post == "lalu":
        return today - timedelta(days=(today.weekday() - weekday) % 7 or 7)
    return today + timedelta(days=ahead or 7)


def _day_of_month(today: date, day: int, *, past: bool) -> date | None:
    step = -1 if past else 1
    year, month = today.year, today.month
    for _ in range(3):  # "tanggal 31" in November waits for December
        try:
            candidate: date | None = date(year, month, day)
        except ValueError:
            candidate = None
        if candidate is not None and (candidate <= today if past else candidate >= today):
            return candidate
        month += step
        year, month = (year + 1, 1) if month == 13 else (year - 1, 12) if month == 0 else (year, month)
    return None


def _parse_date_span(span: str, local_now: datetime) -> date | None:
    # Imported on first use: the import costs ~0.1 s and the first parse ~0.3 s more (locale data),
    # which processes that never read a date (the CLI, most tests) need not pay; see warm_up().
    from dateparser.date import DateDataParser

    parser = DateDataParser(
        languages=["id", "en"],
        settings={"DATE_ORDER": "DMY", "PREFER_DATES_FROM": "future", "RELATIVE_BASE": local_now},
    )
    try:
        data = parser.get_date_data(re.sub(r"(?i)\bags\b", "agustus", span))
    except Exception:  # a third-party parser on customer text: a date we cannot read is no date
        return None
    if data.date_obj is None:
        return None
    parsed: date = data.date_obj.date()
    if "year" in (data.parts or ()):
        return parsed
    # dateparser's "future" skips today ("23 November" on 23 Nov is 2027); we want today.
    today = local_now.date()
    for year in range(today.year, today.year + 9):  # 29 Feb waits for a leap year
        try:
            candidate = date(year, parsed.month, parsed.day)
        except ValueError:
            continue
        if candidate >= today:
            return candidate
    return None


# --- person_name ---------------------------------------------------------------------------------

_STRONG_INTRO = re.compile(
    r"(?<!\w)(?:nama\s+(?:saya|sy|aku|ku|gue|gw)(?!\w)(?:\s+(?:adalah|ialah|jadi|jd|menjadi))?|namaku|nama\s*:|my\s+name\s+is"
    r"|my\s+name['’]?s|atas\s+nama|panggil\s+(?:saja|aja|sj)(?:\s+(?:saya|sy|aku))?|call\s+me|perkenalkan\s+saya)\s*:?\s*",
    re.I,
)
# Only at the start of a clause: "halo, saya Dewi" introduces, "pesanan saya rusak." does not.
_WEAK_INTRO = re.compile(r"(?<!\w)(?:saya|sy|aku|gue|gw|i['’]?m|i\s+am|this\s+is|ini\s+dengan)\s+", re.I)
# A new name after "nama"/"name" earlier in the message: "ganti nama akun jadi Putri Ayu", "it should be Michael".
_CORRECTION = re.compile(r"(?<!\w)(?:jadi|jd|menjadi|harusnya|seharusnya|should\s+be|to)\s+", re.I)
# Whose name: "ganti nama barang jadi kulkas" renames a product, not a person.
_NAME_MENTION = re.compile(
    r"(?<!\w)(?:nama\s+(?:saya|sy|aku|ku|gue|gw|akun|profil|profile|panggilan|penerima|pemesan|lengkap|di|pada)"
    r"|namaku|nama(?=\s*$)|(?:my|recipient|recipient's|last|first|full|account|profile)\s+name)(?!\w)",
    re.I,
)
_CLAUSE_OPENERS = frozenset(
    "halo hallo helo hai hi hello hey pagi siang sore malam kak kakak min admin gan sis bro mas mbak pak bu "
    "perkenalkan kenalin kenal dear assalamualaikum salam ok oke".split()
)
_NAME_WORD = re.compile(r"[^\W\d_](?:[^\W\d_]|['’-](?=[^\W\d_])){0,29}")
_NAME_GAP = re.compile(r"[ \t]+")
_AFTER_NAME = frozenset({"dari", "dr", "from", "disini", "here"})
# Words in front of a name that are not part of it: "saya Ibu Kartika", "atas nama penerima Dimas".
_TITLES = frozenset("ibu bu bapak pak mas mbak bang mr mrs ms miss penerima pemesan recipient".split())
_NOT_NAMES = frozenset(
    # function words
    "dan dari yang mau ingin mo pengen pingin and from di ke untuk utk buat dengan dgn sama ini itu nih tuh the a an "
    "is am are was be to of for with at on in my your our his her its it me you we they he she this that not no "
    "tidak tdk gak ga nggak ngga enggak engga bukan belum blm sudah udah udh sdh telah lagi lg sedang sdg masih "
    "juga jg cuma hanya akan bakal bisa bs harus perlu butuh pernah baru sangat banget sekali kok ya iya yes ok "
    "oke okay sih dong deh kan pun aja saja just also so very really too still here there adalah ialah "
    "nya mu ku kami kita anda kamu dia mereka saya aku sy gue gw kak min gan sis admin cs "
    # what follows "saya"/"I'm" when it is not a name
    "kecewa marah kesal bingung sedih senang puas capek cape lelah takut sakit sibuk pusing malu heran ragu "
    "komplain complain protes tanya nanya bertanya minta mohon pesan order beli membeli memesan bayar transfer "
    "tunggu nunggu menunggu nungguin terima kirim cek coba lihat liat pikir kira rasa tau tahu lupa setuju "
    "pelanggan customer member pembeli konsumen sendiri disini sini dimana mana siapa apa kapan kenapa gimana "
    "salah benar betul beda ganti diganti berubah terdaftar tercatat keliru typo tinggal kerja pakai pake "
    "kemarin kemaren besok tadi nanti sekarang hari minggu senin selasa rabu kamis jumat sabtu dulu "
    "jadi jd menjadi pada sesuai yaitu ada lapar haus pamit permisi undur cabut akhiri pindah pesen kapok "
    "belanja pergi pulang keluar balik datang dateng ambil jemput libur cuti wfh wfo lanjut stop berhenti "
    "unsub daftar langganan paham ngerti mengerti siap sepakat konfirmasi spelled misspelled ketik "
    "pt cv ud tbk toko perusahaan company kantor "
    "angry upset sorry sad happy glad fine good great well sure done back ready tired afraid sick new "
    "waiting calling writing trying looking asking going gonna interested disappointed frustrated confused "
    "wrong incorrect unable able right correct client buyer regarding about unhappy mad urgent important "
    "bad awful crazy insane serious strange weird late broken slow only again first last off out leaving bye "
    "terima kasih thanks thank please tolong maaf halo hai hi hello pagi siang sore malam".split()
)
_NOT_NAME_SHAPES = re.compile(
    r"\w{3,}ing|\w+(?:ed|ful|ous|ive|able|ible|less|nya|kan)|(?:meng|meny|mem|men)\w{3,}|(?:di|ber|ter)\w{4,}", re.I
)


def _person_names(text: str) -> Iterator[_Found]:
    introduced = False
    for m in _STRONG_INTRO.finditer(text):
        name = _name_after(text, m.end(), check_shape=False, need_clause_end=False)
        if name:
            introduced = True
            yield name
    # After "my name is Budi", a later "send it to Jakarta" is an address, not a new name.
    for m in () if introduced else _CORRECTION.finditer(text):
        if _NAME_MENTION.search(text, max(0, m.start() - 60), m.start()):
            name = _name_after(text, m.end(), check_shape=True, need_clause_end=False)
            if name:
                yield name
    for m in _WEAK_INTRO.finditer(text):
        before = text[max(0, m.start() - 40):m.start()].rstrip()  # a window: a wall of "saya" stays linear
        if not before and m.start() > 40:
            continue
        last_word = re.search(r"\w+$", before)
        at_clause_start = not before or before[-1] in ",.!?;:\n()" or (
            last_word is not None and last_word.group().lower() in _CLAUSE_OPENERS
        )
        name = _name_after(text, m.end(), check_shape=True, need_clause_end=True) if at_clause_start else None
        if name:
            yield name


def _name_after(text: str, pos: int, *, check_shape: bool, need_clause_end: bool) -> _Found | None:
    words: list[re.Match[str]] = []
    titles = 0
    while len(words) < 3 and titles <= 2:
        word = _NAME_WORD.match(text, pos)
        if not word or word.group().lower() in _NOT_NAMES:
            break
        if not words and word.group().lower() in _TITLES:
            titles += 1
            gap = _NAME_GAP.match(text, word.end())
            if not gap:
                break
            pos = gap.end()
            continue
        if check_shape and not word.group().istitle() and _NOT_NAME_SHAPES.fullmatch(word.group()):
            break  # "i'm waiting", "saya menunggu", "this is ridiculous"; "I'm Ahmed" is capitalised
        words.append(word)
        gap = _NAME_GAP.match(text, word.end())
        if not gap:
            break
        pos = gap.end()
    if not words:
        return None
    start, end = words[0].start(), words[-1].end()
    if need_clause_end and not _ends_clause(text, end):
        return None
    value = " ".join(w.group().title() if w.group().islower() or w.group().isupper() else w.group() for w in words)
    return _Found("person_name", value, start, end)


def _ends_clause(text: str, pos: int) -> bool:
    rest = text[pos:pos + 40].lstrip()
    if not rest or rest[0].isdigit() or not (rest[0].isalnum() or rest[0] == "_"):
        return True  # end, punctuation, emoji, or a number ("saya Dewi 0812...")
    next_word = re.match(r"\w+", rest)
    return next_word is not None and next_word.group().lower() in _AFTER_NAME
