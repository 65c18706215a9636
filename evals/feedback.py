"""Rated answers as evaluation cases (shared/evalsets cases format), for `citewise feedback export`.

One case per rated turn, its latest rating deciding:
- thumbs up, answered: `reference` is the answer (citation markers removed), `gold_doc_ids` the
  documents its verified citations point to, `answer_type` "free";
- thumbs up, refused: `answer_type` "refuse" (declining was right), no gold documents;
- thumbs down: the question alone (`answer_type` "free", no reference, no gold documents),
  for a person to complete; the rejected answer is kept under `feedback` for that.
`history` is the session's earlier turns, `lang` detected from the question, `domain` the one the
router chose, `group` "". The extra `feedback` object (rating, comment, turn, session, answer,
kbs) is not part of the format; loaders of the format ignore it.
"""

from __future__ import annotations

from typing import Any

from agent.markers import strip_markers
from agent.state import DialogueStore, FeedbackRecord, TurnRecord
from retrieval.lang import detect_lang
from retrieval.types import DOMAINS


def feedback_cases(store: DialogueStore) -> list[dict[str, Any]]:
    """The store's rated turns as cases, oldest turn first."""
    latest: dict[int, tuple[FeedbackRecord, TurnRecord]] = {}
    for record, turn in store.feedback():
        latest[record.turn_id] = (record, turn)  # feedback() is oldest first: the last one wins
    cases = []
    for record, turn in sorted(latest.values(), key=lambda pair: pair[0].turn_id):
        earlier = [t for t in store.history(turn.session_id) if t.idx < turn.idx]
        cases.append(_case(record, turn, earlier))
    return cases


def _case(record: FeedbackRecord, turn: TurnRecord, earlier: list[TurnRecord]) -> dict[str, Any]:
    liked = record.rating > 0
    gold: list[str] = []
    for c in turn.citations:
        if c.verified and c.doc_id not in gold:
            gold.append(c.doc_id)
    answered = liked and not turn.refused
    return {
        "id": f"feedback-{turn.id}",
        "question": turn.user_text,
        "history": [
            {"role": role, "content": text}
            for t in earlier
            for role, text in (("user", t.user_text), ("assistant", t.answer))
        ],
        "lang": detect_lang(turn.user_text),
        "domain": turn.domain if turn.domain in DOMAINS else "general",
        "group": "",
        "gold_doc_ids": gold if answered else [],
        "answers": [],
        "answer_type": "refuse" if liked and turn.refused else "free",
        "reference": strip_markers(turn.answer) if answered else "",
        "feedback": {
            "rating": record.rating,
            "comment": record.comment,
            "turn_id": turn.id,
            "session_id": turn.session_id,
            "answer": turn.answer,
            "kbs": list(turn.route.kbs if turn.route else ()),
        },
    }
