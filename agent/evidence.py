"""Evidence first: which sentences of the retrieved passages answer the question, and whether one
does.

A trained scorer, not a cosine to the query: a small neural network (one hidden layer of 16)
over features of a (question, sentence) pair: e5 cosine (absolute and against the best
candidate), the question's content words and character bigrams found in the sentence and in its
context (title, the sentence before), what the sentence adds beyond the question, whether a
question asking for a number, a limit, a time or a duration meets a sentence that states one,
length, and the passage's rank. It is trained by `python -m evals.evidence_train` on the shared dev
sets (XQuAD en/zh: the gold span marks the positive sentence; RGB-zh: positive and negative
passages) and our newcomer dev set, and stored in agent/evidence_data/evidence.json with its
measured figures; at run time it is two small matrix products in numpy.

The best sentence's probability is also the answerability signal: on-topic passages that do not
contain the answer (RGB's negatives, a leaflet asked about something it never mentions) score low.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np

from agent.citations import SupportScorer
from agent.markers import strip_markers
from agent.quantities import quantities
from retrieval.lexical import content_words, segment
from retrieval.sentences import split_sentences
from retrieval.types import Hit

MODEL_PATH = Path(__file__).parent / "evidence_data" / "evidence.json"
FEATURES = (
    "cos",
    "cos_gap",
    "lex",
    "lex_gap",
    "lex_ctx",
    "bigram",
    "bigram_gap",
    "novelty",
    "lex_x_novelty",
    "asks_number_has",
    "asks_number_lacks",
    "has_number",
    "asks_limit_has_bound",
    "unit_fits",
    "length",
    "heading",
    "rank",
    "first",
)
ASKS_NUMBER = re.compile(
    r"\bhow (?:many|much|long|late|early|often|old|far|soon|big|high|large)\b|"
    r"\bwhat (?:year|time|age|percentage|date|amount|dose|is the (?:maximum|minimum|limit))\b|"
    r"\bwhen\b|\bwhich year\b|\bwithin how\b|\bmaximum\b|\bminimum\b|\btemperature\b|"
    # "What's the most paracetamol I can take in one day?" asks for an amount.
    r"\bwhat(?:'s| is) the (?:most|least|longest|latest|earliest|highest|lowest)\b|"
    r"\b(?:by|at|until) what (?:time|age|date)\b|"
    r"多少|几|多久|多长|多大|多远|多高|多重|何时|什么时候|哪一年|哪年|期限|最多|最长|最高|最低|上限|"
    r"人数|时间|日期|金额|比例",
    re.IGNORECASE,
)
ASKS_LIMIT = re.compile(
    r"\b(?:at most|maximum|max|most|minimum|at least|limit|up to|longest|latest|earliest)\b|"
    r"\bhow (?:late|early|soon)\b|"
    r"最多|最长|最高|最低|最少|至少|上限|下限|不超过|最晚|最早",
    re.IGNORECASE,
)
_BOUND = re.compile(
    r"\b(?:(?:no|not) (?:\w+ ){0,2}?(?:more|less|later|earlier|longer) than|up to|maximum|at most|"
    r"at least|minimum|exceed\w*)\b|"
    # "before taking" is no bound; "before 9:00", "within 14 days" are.
    r"\b(?:until|before|after|within|by) (?:the )?(?:\d|one|two|three|four|five|six|seven|ten)|"
    r"不(?:得|要|应|可)?(?:超过|少于|低于|高于|晚于|早于)|最多|最长|最高|最低|至少|以内|以上|以下|之前|之后|前",
    re.IGNORECASE,
)
# The kind of quantity a question asks for, and the units that answer it.
_DURATION = {"day", "week", "month", "year", "hour", "minute"}
_WANTS_UNITS = (
    (
        r"how long|how many (?:days|weeks|months|years|hours)|多久|多长时间|几天|几个月|几年|"
        r"多少天|多少年|期限|几周",
        _DURATION,
    ),
    # "How early should I get there?" is answered by a time or by how long before something.
    (r"how late|how early|what time|when does|几点|什么时候开|最晚|最早", {"time"}),
    (r"how late|how early|提前多久|提前几天", _DURATION),
    (r"how much|dose|dosage|剂量|多少毫克|多少克|多少钱|费用|多少元", {"mg", "ml", "yuan", "%"}),
    (r"how old|age|几岁|多大", {"age", "year"}),
    (r"temperature|温度|多少度|体温", {"celsius"}),
    (r"how often|how many times|几次|多少次|频率", {"times"}),
)
_CJK = re.compile(r"[\u3400-\u9fff]")
_HEADING = re.compile(r"^\s*#|^\s*第[一二三四五六七八九十百\d]+[章节]")


@dataclass(frozen=True)
class Evidence:
    """One candidate sentence: which hit it is from, the sentence, P(it answers the question)."""

    hit: int
    sentence: str
    score: float


@dataclass(frozen=True)
class EvidenceModel:
    """A small multilayer perceptron over standardised FEATURES (ReLU hidden layers, a sigmoid
    out), and the answerability threshold on the best sentence's probability."""

    layers: tuple[tuple[np.ndarray, np.ndarray], ...]  # (weights, biases) per layer
    mean: np.ndarray
    scale: np.ndarray
    threshold: float

    def __post_init__(self) -> None:
        n = len(FEATURES)
        if len(self.mean) != n or len(self.scale) != n or self.layers[0][0].shape[0] != n:
            raise ValueError(f"an evidence model needs {n} inputs, means and scales")
        if self.layers[-1][0].shape[1] != 1:
            raise ValueError("an evidence model ends in one output")
        if not 0 <= self.threshold <= 1:
            raise ValueError("threshold must be a probability in [0, 1]")

    def probabilities(self, x: np.ndarray) -> np.ndarray:
        h = (x - self.mean) / self.scale
        for i, (w, b) in enumerate(self.layers):
            h = h @ w + b
            if i < len(self.layers) - 1:
                h = np.maximum(h, 0.0)
        return 1.0 / (1.0 + np.exp(-np.clip(h[:, 0], -30, 30)))

    def to_json(self) -> dict[str, object]:
        return {
            "features": list(FEATURES),
            "layers": [[w.round(6).tolist(), b.round(6).tolist()] for w, b in self.layers],
            "mean": self.mean.round(6).tolist(),
            "scale": self.scale.round(6).tolist(),
            "threshold": round(self.threshold, 3),
        }

    @classmethod
    def load(cls, path: Path = MODEL_PATH) -> EvidenceModel:
        data = json.loads(path.read_text(encoding="utf-8"))
        if tuple(data["features"]) != FEATURES:
            raise ValueError(f"{path} has other features: run python -m evals.evidence_train")
        layers = tuple((np.asarray(w, float), np.asarray(b, float)) for w, b in data["layers"])
        return cls(
            layers, np.asarray(data["mean"]), np.asarray(data["scale"]), float(data["threshold"])
        )


@cache
def default_model() -> EvidenceModel:
    return EvidenceModel.load()


def asks_number(question: str) -> bool:
    """Whether the question wants a quantity, a date or a time.

    >>> asks_number("How late can students stay?"), asks_number("网上买的东西多少天内可以退货？")
    (True, True)
    >>> asks_number("What's the most paracetamol I can take in one day?")
    True
    >>> asks_number("What temperature should I keep the tablets at?")
    True
    """
    return ASKS_NUMBER.search(question) is not None


def _bigrams(text: str) -> set[str]:
    chars = "".join(_CJK.findall(text))
    if chars:
        return {chars[i : i + 2] for i in range(len(chars) - 1)}
    words = segment(text)
    return {" ".join(words[i : i + 2]) for i in range(len(words) - 1)}


def _share(needles: set[str], hay: set[str]) -> float:
    return len(needles & hay) / len(needles) if needles else 0.0


@dataclass(frozen=True)
class Candidate:
    hit: int
    rank: int  # the hit's rank (0-based)
    index: int  # the sentence's place in its passage
    sentence: str
    context: str  # the passage title and the sentence before


def candidates(hits: Sequence[Hit], top: int = 5) -> list[Candidate]:
    """The sentences of the top hits, each with its context."""
    out = []
    for i, hit in enumerate(hits[:top]):
        sentences = split_sentences(hit.text, unwrap=True) or [hit.text]
        for j, sentence in enumerate(sentences):
            before = sentences[j - 1] if j else ""
            out.append(Candidate(i, i, j, strip_markers(sentence), f"{hit.title} {before}"))
    return out


def features(question: str, cands: Sequence[Candidate], cosines: np.ndarray) -> np.ndarray:
    """The FEATURES of each candidate sentence for `question` (rows in `cands` order)."""
    q_words = set(content_words(question))
    q_bigrams = _bigrams(question)
    wants = asks_number(question)
    limit = ASKS_LIMIT.search(question) is not None
    units = set().union(*(u for p, u in _WANTS_UNITS if re.search(p, question, re.IGNORECASE)))
    rows = []
    for c, cos in zip(cands, cosines, strict=True):
        s_words = set(segment(c.sentence))
        s_content = set(content_words(c.sentence))
        lex = _share(q_words, s_words)
        novelty = len(s_content - q_words) / len(s_content) if s_content else 0.0
        stated = quantities(c.sentence)
        has = 1.0 if stated else 0.0
        bound = 1.0 if _BOUND.search(c.sentence) else 0.0
        rows.append(
            [
                float(cos),
                0.0,
                lex,
                0.0,
                _share(q_words, s_words | set(segment(c.context))),
                _share(q_bigrams, _bigrams(c.sentence)),
                0.0,
                novelty,
                lex * novelty,
                float(wants) * has,
                float(wants) * (1.0 - has),
                has,
                float(limit) * bound,
                1.0 if units and any(q.unit in units for q in stated) else 0.0,
                math.log1p(len(c.sentence)) / 5.0,
                1.0 if _HEADING.search(c.sentence) or len(c.sentence) < 12 else 0.0,
                1.0 / (1.0 + c.rank),
                1.0 if c.index == 0 else 0.0,
            ]
        )
    x = np.asarray(rows, dtype=np.float64).reshape(len(cands), len(FEATURES))
    if len(cands):
        for col, gap in ((0, 1), (2, 3), (5, 6)):
            x[:, gap] = x[:, col] - x[:, col].max()
    return x


class EvidenceFinder:
    """Ranks the retrieved passages' sentences by how likely each answers the question."""

    def __init__(self, scorer: SupportScorer, model: EvidenceModel | None = None) -> None:
        self.scorer = scorer
        self.model = model or default_model()

    def rank(self, question: str, hits: Sequence[Hit], top: int = 5) -> list[Evidence]:
        """Every sentence of the top hits, most likely answer first."""
        cands = candidates(hits, top)
        if not cands:
            return []
        q = self.scorer.embedder.embed_query(question)
        vectors = self.scorer.sentence_vectors([c.sentence for c in cands])
        probs = self.model.probabilities(features(question, cands, vectors @ q))
        order = np.argsort(-probs, kind="stable")
        return [Evidence(cands[i].hit, cands[i].sentence, float(probs[i])) for i in order]

    def answerable(self, ranked: Sequence[Evidence]) -> bool:
        return bool(ranked) and ranked[0].score >= self.model.threshold
