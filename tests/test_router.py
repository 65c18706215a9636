"""The router: data checks, kb choice, metrics by hand, prototype and trained routers end to end."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path

import pytest

from agent.router import (
    DEFAULT_DATA,
    PrototypeRouter,
    TrainedRouter,
    kbs_for,
    load_examples,
    load_router,
)
from agent.router_train import (
    RouterMetrics,
    evaluate_router,
    format_metrics,
    macro_f1,
    task_scores,
    train_router,
)
from agent.types import INTENTS
from retrieval.errors import ManifestMismatchError
from retrieval.types import DOMAINS

OBVIOUS = [
    ("Hello!", "chitchat", "general"),
    ("What are the side effects of aspirin?", "knowledge", "medical"),
    ("Can my landlord keep my deposit if I leave early?", "knowledge", "legal"),
    ("Write me a Python script that renames files", "out_of_scope", "general"),
    ("谢谢你！", "chitchat", "general"),
    ("劳动合同到期公司不续签，有经济补偿吗？", "knowledge", "legal"),
    ("宝宝咳嗽发烧三天了要去医院吗？", "knowledge", "medical"),
    ("那个呢", "clarify", "general"),
]


def test_data_file_is_valid_balanced_and_bilingual():
    rows = load_examples(DEFAULT_DATA)
    assert len(rows) >= 300
    langs = Counter(r.lang for r in rows)
    assert abs(langs["en"] - langs["zh"]) <= len(rows) * 0.1
    test = [r for r in rows if r.split == "test"]
    assert 0.15 <= len(test) / len(rows) <= 0.25
    # Stratified: every intent and every domain appears in the test split in both languages.
    for lang in ("en", "zh"):
        assert {r.intent for r in test if r.lang == lang} == set(INTENTS)
        assert {r.domain for r in test if r.lang == lang} == set(DOMAINS)
    assert len({r.text for r in rows}) == len(rows), "duplicate texts leak between splits"


def test_bad_data_line_names_the_line(tmp_path):
    good = {"text": "hi", "intent": "chitchat", "domain": "general", "lang": "en", "split": "train"}
    path = tmp_path / "q.jsonl"
    path.write_text(json.dumps(good) + "\n{not json\n", encoding="utf-8")
    with pytest.raises(ValueError, match="line 2: not valid JSON"):
        load_examples(path)
    path.write_text(json.dumps(good) + "\n\n" + json.dumps({**good, "intent": "chat"}) + "\n")
    with pytest.raises(ValueError, match=r"line 3: intent is 'chat'; it must be one of chitchat"):
        load_examples(path)


def test_kbs_for_maps_domain_and_falls_back_to_all():
    kbs = {"laws": "legal", "cases": "legal", "wiki": "education"}
    assert kbs_for("legal", kbs) == ["laws", "cases"]
    assert kbs_for("education", kbs) == ["wiki"]
    assert kbs_for("medical", kbs) == ["laws", "cases", "wiki"]  # no medical kb: search all
    assert kbs_for("general", kbs) == ["laws", "cases", "wiki"]
    assert kbs_for("legal", {}) == []
    with pytest.raises(ValueError, match="unknown domain 'law'"):
        kbs_for("law", kbs)


def test_macro_f1_and_confusion_match_hand_computation():
    gold = ["a", "a", "b", "c"]
    pred = ["a", "b", "b", "c"]
    # a: P 1, R 1/2 -> F1 2/3; b: P 1/2, R 1 -> 2/3; c: 1. Mean (2/3 + 2/3 + 1) / 3 = 7/9.
    assert macro_f1(gold, pred) == pytest.approx(7 / 9)
    s = task_scores(gold, pred, ["a", "b", "c", "d"])
    assert s.accuracy == 0.75 and s.n == 4
    assert s.confusion == [[1, 1, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 0]]
    with pytest.raises(ValueError, match="equal"):
        macro_f1(["a"], [])


@pytest.fixture(scope="session")
def prototype_router(e5_embedder) -> PrototypeRouter:
    return PrototypeRouter(e5_embedder)


@pytest.mark.slow
def test_prototype_router_routes_obvious_messages(prototype_router):
    for text, intent, domain in OBVIOUS:
        route = prototype_router.route(text)
        assert (route.intent, route.domain) == (intent, domain), text
        assert 0.25 <= route.intent_confidence <= 1.0 and route.method == "prototype"
    empty = prototype_router.route("   ")
    assert (empty.intent, empty.domain) == ("clarify", "general")


@pytest.mark.slow
def test_load_router_without_a_trained_folder_uses_prototypes(e5_embedder, tmp_path):
    # A few lines per intent keep this fast; the full-data prototypes are tested above.
    rows = load_examples(DEFAULT_DATA, split="train")
    small = [r for i in INTENTS for r in [r for r in rows if r.intent == i][::8]]
    data = tmp_path / "small.jsonl"
    data.write_text("".join(json.dumps(r.__dict__, ensure_ascii=False) + "\n" for r in small))
    router = load_router(tmp_path / "no-router-here", e5_embedder, data=data)
    assert isinstance(router, PrototypeRouter)
    assert router.route("What is the capital of Australia?").intent == "knowledge"
    assert router.route("你好呀").intent == "chitchat"


@pytest.fixture(scope="session")
def trained(e5_embedder, tmp_path_factory) -> tuple[Path, RouterMetrics]:
    out = tmp_path_factory.mktemp("router") / "router"
    metrics = train_router(DEFAULT_DATA, out, epochs=1, progress=False, embedder=e5_embedder)
    return out, metrics


@pytest.mark.slow
def test_one_epoch_beats_the_majority_class(trained):
    _, m = trained
    assert m.method == "trained" and m.split == "test"
    assert m.intent["all"].accuracy > m.majority["intent"] + 0.1
    assert m.domain["all"].accuracy > m.majority["domain"] + 0.1
    assert set(m.intent) == {"all", "en", "zh"}
    table = format_metrics(m)
    assert f"| intent | all | {m.intent['all'].n} | {m.intent['all'].accuracy:.3f} |" in table


@pytest.mark.slow
def test_saved_router_predicts_as_it_did_before_saving(trained, e5_embedder):
    path, at_training = trained
    assert not list(path.parent.glob(".router.*")), "temporary folders left behind"
    router = load_router(path, e5_embedder)
    assert isinstance(router, TrainedRouter)
    # Same confusion matrices on the test split = the same prediction for every test message.
    again = evaluate_router(router, DEFAULT_DATA)
    assert again.intent == at_training.intent and again.domain == at_training.domain
    meta = json.loads((path / "meta.json").read_text())
    assert meta["embedder"] == e5_embedder.name and len(meta["data_sha256"]) == 64
    route = router.route("孕妇感冒了能吃什么药？")
    assert route.method == "trained" and 0.0 < route.domain_confidence <= 1.0


@pytest.mark.slow
def test_damaged_or_mismatched_folder_is_refused(trained, e5_embedder, tmp_path):
    path, _ = trained
    copy = tmp_path / "router"
    shutil.copytree(path, copy)
    meta = json.loads((copy / "meta.json").read_text())
    (copy / "meta.json").write_text(json.dumps({**meta, "embedder": "bundled:minilm"}))
    with pytest.raises(ManifestMismatchError, match=r"trained on bundled:minilm embeddings"):
        load_router(copy, e5_embedder)
    with open(copy / "model.safetensors", "r+b") as f:
        f.seek(-4, 2)
        f.write(b"\0\0\0\0")
    with pytest.raises(ManifestMismatchError, match="checksum"):
        load_router(copy, e5_embedder)
