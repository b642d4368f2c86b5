"""The embedded backend, trained from nlu/data, judged on a test set written apart from the training data.

`tests/nlu/testset.jsonl` was written by someone who did not read nlu/data (docs/nlu.md is the
contract both follow); a test below keeps it that way by refusing any test message that normalises to
a training example.
"""

from __future__ import annotations

import json
import subprocess
from collections import Counter
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from nlu.evaluation import evaluate, load_cases
from nlu.interpretation import INTENTS
from nlu.normalise import normalise
from nlu.training_data import TrainingDataError, load_examples
from tests.support.server import sapa_command

ROOT = Path(__file__).resolve().parents[2]
TESTSET = ROOT / "tests" / "nlu" / "testset.jsonl"


def test_training_data_covers_every_intent_with_many_examples():
    counts = Counter(e.intent for e in load_examples())
    assert set(counts) == set(INTENTS)
    assert min(counts.values()) >= 100, counts
    assert sum(counts.values()) >= 3000


def test_testset_is_large_covers_everything_and_is_not_in_the_training_data():
    cases = load_cases(TESTSET)
    assert len(cases) >= 300
    assert {c.intent for c in cases} == set(INTENTS)
    assert {kind for c in cases for kind, _ in c.entities} == {"order_id", "amount", "phone", "email", "date",
                                                                "person_name"}
    training = {normalise(e.text) for e in load_examples()}
    assert not [c.text for c in cases if normalise(c.text) in training]


def test_testset_macro_f1_is_at_least_0_90(interpreter):
    report = evaluate(interpreter, load_cases(TESTSET))
    print(f"test set: accuracy {report.accuracy:.3f}, macro-F1 {report.macro_f1:.3f}, entity F1 "
          f"{report.entity_f1:.3f}, {report.ms_per_message:.2f} ms/message; confusions {report.confusions[:5]}")
    assert report.macro_f1 >= 0.90, report.confusions
    assert min(s.f1 for s in report.per_intent.values()) >= 0.80, report.per_intent
    assert report.entity_f1 >= 0.90, report.per_entity


def test_confidence_is_calibrated_on_the_testset(interpreter):
    """Among messages answered with confidence c, about a fraction c is right (expected calibration error)."""
    cases = load_cases(TESTSET)
    answers = [interpreter.interpret(c.text, None, c.now) for c in cases]
    confidence = np.array([a.ranking[0][1] if a.ranking else a.confidence for a in answers])
    guesses = [a.ranking[0][0] if a.ranking else a.intent for a in answers]
    correct = np.array([guess == c.intent for guess, c in zip(guesses, cases, strict=True)])
    bins = np.minimum((confidence * 10).astype(int), 9)
    ece = sum(abs(confidence[bins == b].mean() - correct[bins == b].mean()) * (bins == b).mean()
              for b in range(10) if (bins == b).any())
    assert ece < 0.10, ece


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


@pytest.mark.parametrize(
    ("text", "intent"),
    [
        ("komplain saya kemarin udah diproses belum ya kak", "check_status"),
        ("Mohon maaf sebelumnya, saya ingin menyampaikan keluhan: unit AC yang dipasang kemarin bocor", "complaint"),
        ("udah ga usah kirim2 promo lg ke nomor ini", "opt_out"),
        ("alamat pengiriman khusus pesanan INV-2026-00311 tolong diganti ke rumah ibu saya", "request"),
        ("ganti email di akun saya jadi rina.w@contoh.id", "update_profile"),
        ("SY UDH NUNGGU 2 MINGGU BARANG BLM DTG JUGAAA", "complaint"),
    ],
)
def test_hard_boundaries(interpreter, text, intent):
    assert interpreter.interpret(text).intent == intent


@pytest.mark.parametrize("text", ["", "   ", "asdfghjkl", "😀😀😀", "🙏🙏", "qwpoeiru zmxncb vbvbvb",
                                  "x" * 10_000, "tolong " * 1500, "\u0000\u200b\ufeff", "👍" * 3000])
def test_odd_text_gets_an_answer_and_never_crashes(interpreter, text):
    answer = interpreter.interpret(text)
    assert answer.intent in INTENTS and 0.0 <= answer.confidence <= 1.0
    if not any(ch.isalpha() for ch in text) or text.strip() in {"asdfghjkl", "qwpoeiru zmxncb vbvbvb"}:
        assert answer.intent == "out_of_scope"


def test_entities_and_language_come_with_the_intent(interpreter):
    now = datetime(2026, 11, 23, 10, 0, tzinfo=ZoneInfo("Asia/Jakarta"))
    answer = interpreter.interpret("tolong kirim ulang invoice INV-2026-00123 ke budi@Contoh.co.id besok ya kak",
                                   None, now)
    assert answer.intent == "request" and answer.language == "id"
    assert {(e.entity, e.value) for e in answer.entities} == {
        ("order_id", "INV-2026-00123"), ("email", "budi@contoh.co.id"), ("date", "2026-11-24")}
    assert interpreter.interpret("my parcel still hasn't arrived, where is it?").language == "en"


def test_fast_scores_equal_scikit_learns(interpreter):
    from nlu.embedded import _features

    texts = [normalise(c.text) for c in load_cases(TESTSET)[:200]]
    reference = interpreter.model.model.decision_function(_features(interpreter.model.vectorizers, texts))
    assert np.allclose(reference, np.array([interpreter.scores(t) for t in texts]), atol=1e-9)


def test_evaluate_cli_prints_the_report_and_json(tmp_path):
    lines = [
        {"text": "halo kak", "intent": "greet"},
        {"text": "barang yg dateng rusak, kecewa bgt", "intent": "complaint"},
        {"text": "refund 250rb blm masuk utk INV-2026-00999", "intent": "check_status",
         "entities": [{"entity": "amount", "value": 250000}, {"entity": "order_id", "value": "INV-2026-00999"}]},
        {"text": "kirim besok aja", "intent": "request", "entities": [{"entity": "date", "value": "2026-11-24"}],
         "now": "2026-11-23T10:00:00+07:00"},
    ]
    path = tmp_path / "mini.jsonl"
    path.write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    as_json = subprocess.run([*sapa_command(), "--config", str(ROOT / "config.yml"), "nlu", "evaluate", str(path),
                              "--backend", "embedded", "--json"], capture_output=True, text=True, cwd=tmp_path)
    assert as_json.returncode == 0, as_json.stderr
    report = json.loads(as_json.stdout)
    assert report["n"] == 4 and report["backends"] == {"embedded": 4}
    assert set(report) >= {"accuracy", "macro_f1", "per_intent", "entity_f1", "ms_per_message", "n"}
    assert set(report["per_intent"]) == {"greet", "complaint", "check_status", "request"}
    assert report["entity_f1"] == 1.0
    table = subprocess.run([*sapa_command(), "--config", str(ROOT / "config.yml"), "nlu", "evaluate", str(path)],
                           capture_output=True, text=True, cwd=tmp_path)
    assert table.returncode == 0, table.stderr
    assert "macro-F1" in table.stdout and "ms per message" in table.stdout and "greet" in table.stdout


def test_evaluate_cli_names_the_bad_line(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"text": "halo", "intent": "greet"}\n{"text": "no intent"}\n')
    result = subprocess.run([*sapa_command(), "--config", str(ROOT / "config.yml"), "nlu", "evaluate", str(path)],
                            capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode != 0
    assert "bad.jsonl:2" in result.stderr and "intent" in result.stderr


def test_crossval_cli(tmp_path):
    result = subprocess.run([*sapa_command(), "--config", str(ROOT / "config.yml"), "nlu", "crossval", "--folds", "3",
                             "--json"], capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["folds"] == 3 and report["n"] == len(load_examples())
    assert len(report["fold_macro_f1"]) == 3 and set(report["per_intent"]) == set(INTENTS)
    assert 0.8 <= report["macro_f1"] <= 1.0
