"""The embedded classifier, trained from nlu/data, judged on held-out messages it never saw."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from nlu.interpretation import INTENTS
from nlu.language import detect_language
from nlu.training_data import TrainingDataError, load_examples

HELDOUT = Path(__file__).parent / "heldout.jsonl"


def heldout() -> list[dict[str, str]]:
    return [json.loads(line) for line in HELDOUT.read_text().splitlines() if line.strip()]


def test_training_data_covers_every_intent_with_many_examples():
    counts = Counter(e.intent for e in load_examples())
    assert set(counts) == set(INTENTS)
    assert min(counts.values()) >= 40


def test_heldout_messages_are_not_in_the_training_data():
    training = {e.text.lower() for e in load_examples()}
    assert not [row["text"] for row in heldout() if row["text"].lower() in training]


def test_heldout_accuracy(interpreter):
    rows = heldout()
    wrong = [(r["text"], r["intent"], interpreter.interpret(r["text"]).intent) for r in rows]
    wrong = [w for w in wrong if w[1] != w[2]]
    accuracy = 1 - len(wrong) / len(rows)
    print(f"held-out accuracy {accuracy:.3f} on {len(rows)} messages; misses: {wrong[:15]}")
    assert accuracy >= 0.80, wrong


@pytest.mark.parametrize(
    ("text", "intent"),
    [
        ("halo kak", "greet"),
        ("Selamat pagi, Bapak/Ibu", "greet"),
        ("makasih ya min", "thanks"),
        ("saya mau bicara dengan petugas", "talk_to_agent"),
        ("barang yg dateng rusak, kecewa bgt", "complaint"),
        ("poin saya berapa?", "loyalty_points"),
        ("where is my order INV-2024-00999?", "check_status"),
        ("tolong hapus data pribadi saya", "delete_data"),
    ],
)
def test_clear_messages_are_understood(interpreter, text, intent):
    assert interpreter.interpret(text).intent == intent


@pytest.mark.parametrize("text", ["asdfghjkl", "qwertyuiop zxcvbnm", "", "   "])
def test_gibberish_is_out_of_scope(interpreter, text):
    assert interpreter.interpret(text).intent == "out_of_scope"


def test_below_the_threshold_the_intent_is_out_of_scope(interpreter):
    from nlu.embedded import EmbeddedInterpreter

    strict = EmbeddedInterpreter(interpreter.model, threshold=0.999)
    result = strict.interpret("saya mau tanya sesuatu")
    assert result.intent == "out_of_scope" and result.confidence < 0.999
    # The classifier's own guess is kept in the ranking, for audit.
    assert result.ranking[0][0] != "out_of_scope" and round(result.ranking[0][1], 4) == result.confidence


def test_language_detection():
    assert detect_language("halo kak, pesanan saya udah sampai mana ya") == "id"
    assert detect_language("hello, where is my order please") == "en"
    assert detect_language("123 !!!") is None


def test_unknown_intent_in_training_data_is_refused(tmp_path):
    (tmp_path / "x.yml").write_text('version: "3.1"\nnlu:\n- intent: order_pizza\n  examples: |\n    - pizza\n')
    with pytest.raises(TrainingDataError, match="unknown intent 'order_pizza'"):
        load_examples(tmp_path)


def test_sapa_nlu_train_saves_a_model_that_start_up_reuses(tmp_path, base_settings):
    from click.testing import CliRunner

    from bot.cli import main
    from nlu.embedded import load_or_train
    from nlu.training_data import data_fingerprint

    root = Path(__file__).resolve().parents[2]
    result = CliRunner().invoke(main, ["--config", str(root / "config.yml"), "nlu", "train", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "16 intents" in result.output
    saved = tmp_path / f"embedded-{data_fingerprint()}.pkl"
    assert saved.is_file()
    reused = load_or_train(0.35, None, tmp_path)
    assert reused.interpret("halo kak").intent == "greet"
    assert reused.model.fingerprint == data_fingerprint()
    assert list(tmp_path.iterdir()) == [saved]  # nothing retrained, nothing new written
