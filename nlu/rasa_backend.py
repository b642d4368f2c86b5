"""The Rasa backend: one `POST /model/parse` to a Rasa Open Source server per message.

Rasa answers with an intent, a confidence, a ranking and the entities DIET found. We map that to our
`Interpretation`: `nlu_fallback` and intents we do not know become out_of_scope, entity values are
normalised by our own extractors (Rasa returns the text span; handlers want integers, E.164 and ISO
dates), and entities our deterministic extractors find are kept even when Rasa misses them.

When Rasa is down, slow or answers nonsense, the message is still understood: the embedded backend
answers, the outage is logged once, and Rasa is not asked again for `retry_after_s`, so a dead
server costs one timeout per interval rather than one per message.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import datetime
from typing import Any

import httpx

from nlu.entities import extract_entities
from nlu.interpretation import INTENTS, Entity, Interpretation, Interpreter
from nlu.language import detect_language

log = logging.getLogger(__name__)
RASA_FALLBACK_INTENT = "nlu_fallback"
# Long texts gain nothing past this and cost Rasa's tokenizer time; the embedded backend caps alike.
MAX_CHARS = 2000


class RasaAnswerError(ValueError):
    """Rasa answered, but not with a parse result we can read."""


class RasaInterpreter:
    def __init__(
        self,
        url: str,
        fallback: Interpreter,
        threshold: float,
        timeout_s: float = 2.0,
        retry_after_s: float = 30.0,
        client: httpx.Client | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self.fallback = fallback
        self.threshold = threshold
        self.retry_after_s = retry_after_s
        self._client = client or httpx.Client(timeout=timeout_s)
        self._lock = threading.Lock()
        self._down_until = 0.0
        self._down = False
        self._unknown_intents: set[str] = set()

    def probe(self) -> bool:
        """Ask Rasa's /status once (at start-up), so an unreachable server is known and logged at once."""
        try:
            self._client.get(f"{self.url}/status").raise_for_status()
        except httpx.HTTPError as exc:
            self._mark_down(exc)
            return False
        self._mark_up()
        return True

    @property
    def down(self) -> bool:
        """True from a failed call until Rasa answers again (the embedded backend answers meanwhile)."""
        return self._down

    def interpret(self, text: str, language_hint: str | None = None, now: datetime | None = None) -> Interpretation:
        language = detect_language(text) or language_hint
        if not text.strip():
            # Rasa classifies an empty string as some intent with high confidence; nothing was said.
            return Interpretation("out_of_scope", 1.0, language, backend="rasa")
        if time.monotonic() < self._down_until:
            return self._fallback(text, language_hint, now)
        try:
            response = self._client.post(f"{self.url}/model/parse", json={"text": text[:MAX_CHARS]})
            response.raise_for_status()
            interpretation = self._read(response.json(), text, language, now)
        except (httpx.HTTPError, ValueError) as exc:
            self._mark_down(exc)
            return self._fallback(text, language_hint, now)
        self._mark_up()
        return interpretation

    def _read(self, body: Any, text: str, language: str | None, now: datetime | None) -> Interpretation:
        if not isinstance(body, dict) or not isinstance(body.get("intent"), dict):
            raise RasaAnswerError(f"no intent in Rasa's answer: {str(body)[:200]}")
        name = body["intent"].get("name")
        confidence = float(body["intent"].get("confidence") or 0.0)
        ranking = tuple(
            (str(item["name"]), round(float(item["confidence"]), 4))
            for item in body.get("intent_ranking") or []
            if isinstance(item, dict) and "name" in item and "confidence" in item
        )[:5]
        intent = str(name) if name else "out_of_scope"
        if intent not in INTENTS:
            if intent != RASA_FALLBACK_INTENT and intent not in self._unknown_intents:
                self._unknown_intents.add(intent)
                log.warning("Rasa model at %s knows intent %r, which Sapa does not; read as out_of_scope; "
                            "retrain it from nlu/data", self.url, intent)
            intent = "out_of_scope"
        elif confidence < self.threshold:
            intent = "out_of_scope"
        entities = merge_entities(extract_entities(text, now), rasa_entities(body.get("entities"), text, now))
        return Interpretation(intent, round(confidence, 4), language, entities, ranking, backend="rasa")

    def _fallback(self, text: str, language_hint: str | None, now: datetime | None) -> Interpretation:
        answer = self.fallback.interpret(text, language_hint, now)
        return Interpretation(answer.intent, answer.confidence, answer.language, answer.entities, answer.ranking,
                              backend=f"{answer.backend} (rasa down)")

    def _mark_down(self, exc: Exception) -> None:
        with self._lock:
            self._down_until = time.monotonic() + self.retry_after_s
            if not self._down:
                self._down = True
                log.warning("Rasa NLU at %s failed (%s: %s); the embedded backend answers, Rasa is retried "
                            "every %.0fs", self.url, type(exc).__name__, exc, self.retry_after_s)

    def _mark_up(self) -> None:
        if self._down:
            with self._lock:
                if self._down:
                    self._down = False
                    log.info("Rasa NLU at %s answers again", self.url)


def rasa_entities(raw: Any, text: str, now: datetime | None) -> tuple[Entity, ...]:
    """Rasa's entities with values normalised as our extractors would, dropping what cannot be read."""
    found: list[Entity] = []
    for item in raw if isinstance(raw, list) else []:
        if not isinstance(item, dict) or not isinstance(item.get("entity"), str):
            continue
        start, end = item.get("start"), item.get("end")
        if not isinstance(start, int) or not isinstance(end, int) or not 0 <= start < end <= len(text):
            continue
        span = text[start:end]
        value = normalised_value(item["entity"], span, now)
        if value is not None:
            found.append(Entity(item["entity"], value, span, start, end))
    return tuple(found)


def normalised_value(kind: str, span: str, now: datetime | None) -> str | int | None:
    for entity in extract_entities(span, now):
        if entity.entity == kind:
            return entity.value
    if kind == "person_name":
        return " ".join(word.capitalize() for word in span.split()) or None
    if kind == "order_id":
        return span.strip().lstrip("#") or None
    return None  # an amount, phone, email or date we cannot read is no entity at all


def merge_entities(ours: tuple[Entity, ...], theirs: tuple[Entity, ...]) -> tuple[Entity, ...]:
    """Our extractors win where spans overlap; Rasa adds what they missed."""
    merged = list(ours)
    for entity in theirs:
        overlaps = any(
            e.start is not None and e.end is not None and entity.start is not None and entity.end is not None
            and e.start < entity.end and entity.start < e.end
            for e in merged
        )
        if not overlaps:
            merged.append(entity)
    return tuple(sorted(merged, key=lambda e: e.start or 0))
