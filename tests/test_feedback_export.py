"""`citewise feedback export`: rated turns become evaluation cases that evals/ can load."""

from __future__ import annotations

import json

from cli_run import run_cli

from agent.state import DialogueStore, TurnRecord
from agent.types import Citation, Route
from evals.sets import load_set


def _cite(doc_id: str, verified: bool = True) -> Citation:
    return Citation(1, doc_id, "education", 0, "", "", "", 0.9 if verified else 0.1, "", verified)


def test_export_maps_ratings_to_cases(tmp_path):
    data = tmp_path / "data"
    with DialogueStore(data / "dialogue.db") as store:
        sid = store.create_session("oxygen")
        first = store.append_turn(
            sid, TurnRecord(user_text="Who discovered oxygen?", answer="Scheele [1].", domain="x")
        )
        liked = store.append_turn(
            sid,
            TurnRecord(
                user_text="When did he discover it?",
                answer="In 1773 or earlier [1]. Priestley in 1774 [2].",
                domain="education",
                route=Route("knowledge", "education", kbs=("education",)),
                citations=(_cite("xq-en-12-0"), _cite("xq-en-12-1"), _cite("xq-en-9-9", False)),
            ),
        )
        refused = store.append_turn(
            store.create_session(),
            TurnRecord(user_text="谁赢了比赛？", answer="文档中没有说明。", refused=True),
        )
        store.add_feedback(first, -1, "too short")
        store.add_feedback(liked, -1)
        store.add_feedback(liked, 1, "good")  # the latest rating of a turn counts
        store.add_feedback(refused, 1)

    out = tmp_path / "set" / "cases.jsonl"
    out.parent.mkdir()
    done = run_cli("--data-dir", str(data), "feedback", "export", "--out", str(out), timeout=120)
    assert done.returncode == 0, done.stderr
    assert "wrote 3 cases" in done.stderr
    cases = {c["id"]: c for c in map(json.loads, out.read_text(encoding="utf-8").splitlines())}

    up = cases[f"feedback-{liked}"]
    assert up["question"] == "When did he discover it?"
    assert up["history"] == [
        {"role": "user", "content": "Who discovered oxygen?"},
        {"role": "assistant", "content": "Scheele [1]."},
    ]
    assert up["gold_doc_ids"] == ["xq-en-12-0", "xq-en-12-1"]  # verified citations only
    assert up["reference"] == "In 1773 or earlier. Priestley in 1774."
    assert (up["answer_type"], up["lang"], up["domain"], up["group"]) == (
        "free",
        "en",
        "education",
        "",
    )
    assert up["feedback"]["comment"] == "good" and up["feedback"]["kbs"] == ["education"]

    down = cases[f"feedback-{first}"]
    assert (down["reference"], down["gold_doc_ids"], down["domain"]) == ("", [], "general")
    assert down["feedback"] == {**down["feedback"], "rating": -1, "answer": "Scheele [1]."}

    right_refusal = cases[f"feedback-{refused}"]
    assert (right_refusal["answer_type"], right_refusal["lang"]) == ("refuse", "zh")

    # The file is a valid cases.jsonl for the evaluation harness.
    (out.parent / "corpus.jsonl").write_text("", encoding="utf-8")
    loaded = {c.id: c for c in load_set(out.parent).cases}
    assert loaded[f"feedback-{liked}"].gold_doc_ids == ("xq-en-12-0", "xq-en-12-1")
    assert loaded[f"feedback-{liked}"].history[0] == ("user", "Who discovered oxygen?")


def test_export_without_a_store_names_the_problem(tmp_path):
    done = run_cli("--data-dir", str(tmp_path), "feedback", "export", timeout=120)
    assert done.returncode == 2
    assert "nothing has been rated yet" in done.stderr
