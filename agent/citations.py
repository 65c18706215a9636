"""Citation verification: does the passage an answer sentence cites actually support it?

support(sentence, passage) = w * lexical + (1 - w) * semantic, both in [0, 1]:
- lexical: share of the sentence's content words (jieba words for Chinese, lowercased words for
  English, stopwords left out) that occur in the passage;
- semantic: cosine between the sentence and the passage's best-matching sentence under the
  verifier's embedder, rescaled from [floor, 1] to [0, 1] (multilingual-e5 puts unrelated text
  near 0.8, so raw cosine would call everything supported).
Across languages (an English answer from Chinese evidence) words cannot overlap, so support is the
cosine alone, rescaled from [cross floor, cross ceiling]. A citation is verified when support >=
threshold. The evidence gate (agent/gate.py) uses the same score.

Calibration (`python -m evals.support_calibration`, e5, 80 XQuAD cases per language, seed 0; an
answer sentence is the question restated with its gold answer). p10 / p50 / p90:

| sentence vs passage       | en cosine   | en support  | zh cosine   | zh support  |
|---------------------------|-------------|-------------|-------------|-------------|
| gold                      | .86 .90 .93 | .50 .65 .78 | .91 .94 .96 | .59 .73 .84 |
| same article, no answer   | .76 .80 .85 | .00 .08 .25 | .83 .87 .90 | .11 .25 .41 |
| another article           | .73 .76 .78 | .00 .00 .06 | .82 .84 .86 | .06 .11 .19 |
| gold, wrong answer put in | .83 .86 .89 | .19 .41 .56 | .89 .91 .93 | .38 .53 .69 |

Floor 0.80, weight 0.5 (the score alone at 0.45: balanced accuracy, gold against both negatives,
0.966 en, 0.978 zh); the grid's best, 0.987, weighs words at 0.7, which a paraphrasing model
would pay for.
The last row is the limit of the score alone: 36% (en) and 69% (zh) of wrong answers pass it. The
score checks that a sentence says what its passage is about, not that each number in it is right,
so `verify` also checks every number, negation and name against the supporting passage sentence
(agent/claims.py) and that the sentence adds something to the question (`supports`).
With those checks the threshold is 0.35 (`--verify-only --per-set 200`, swept 0.30–0.40): gold
verifies at 0.92 en / 0.92 zh (0.93 / 0.89 on `--seed 1`, cases not tuned on), the same article
without the answer at 0.01 / 0.02, another article at 0.00 / 0.00, gold with a wrong answer put
in at 0.00 / 0.01; at 0.40 gold was 0.89 / 0.91 with the same negatives.
Across languages (parallel paragraphs) cosines sit lower: gold p50 0.81 (en sentence, zh passage)
and 0.83 (zh, en), another article 0.73 and 0.76; cross floor 0.76 and ceiling 0.84 give balanced
accuracy 0.85 at the same threshold.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from agent.claims import check_claim
from agent.markers import markers, strip_markers, with_markers
from agent.quantities import quantities
from agent.types import Citation
from retrieval.lang import detect_lang, has_cjk
from retrieval.lexical import content_words, segment
from retrieval.protocols import Embedder
from retrieval.sentences import split_sentences
from retrieval.types import Hit


@dataclass(frozen=True)
class SupportConfig:
    """How support is computed and what verifies; the defaults are measured (module docstring)."""

    threshold: float = 0.35
    semantic_floor: float = 0.8  # cosine that counts as no support (same language)
    lexical_weight: float = 0.5
    # Across languages e5's cosines are lower and closer together: unrelated pairs sit near
    # cross_floor and supporting ones near cross_ceiling, which maps to full support.
    cross_floor: float = 0.76
    cross_ceiling: float = 0.84

    def __post_init__(self) -> None:
        if not (0 <= self.threshold <= 1 and 0 <= self.lexical_weight <= 1):
            raise ValueError("threshold and lexical_weight must be in [0, 1]")
        if not -1 <= self.semantic_floor < 1:
            raise ValueError("semantic_floor must be in [-1, 1): it is a cosine below 1")
        if not -1 <= self.cross_floor < self.cross_ceiling <= 1:
            raise ValueError("cross_floor must be below cross_ceiling, both cosines in [-1, 1]")


@dataclass(frozen=True)
class Verified:
    """What the check found: the full text, its supported part, every citation with a verdict."""

    text: str  # every sentence; dangling markers removed, unverified markers kept
    grounded: str  # only the sentences a passage supports, with their verified markers
    citations: tuple[Citation, ...]  # verified ones and, with verified=False, the ones that failed
    unsupported_sentences: tuple[str, ...]


@dataclass(frozen=True)
class Components:
    """The raw parts of support for sentences x passages, before the config combines them."""

    lexical: np.ndarray  # (n_sentences, n_passages), in [0, 1]
    cosine: np.ndarray  # best cosine with any of the passage's sentences
    cross_lingual: np.ndarray  # True where sentence and passage are in different languages
    best: list[list[str]]  # the passage sentence that gave that cosine


def combine(parts: Components, config: SupportConfig) -> np.ndarray:
    """Support scores in [0, 1] from their parts (the calibration tries many configs on one set)."""
    floor, w = config.semantic_floor, config.lexical_weight
    semantic = np.clip((parts.cosine - floor) / (1.0 - floor), 0.0, 1.0)
    span = config.cross_ceiling - config.cross_floor
    cross = np.clip((parts.cosine - config.cross_floor) / span, 0.0, 1.0)
    return np.where(parts.cross_lingual, cross, w * parts.lexical + (1 - w) * semantic)


class SupportScorer:
    """Scores how well passages support sentences (shared by the verifier, the gate and evals).

    Passage sentences' vectors are kept in a small LRU cache: a turn's gate and its verification
    read the same passages, and so do the turns of one conversation. Safe to share across threads.
    """

    def __init__(
        self, embedder: Embedder, config: SupportConfig | None = None, cache_size: int = 4096
    ) -> None:
        self.embedder = embedder
        self.config = config or SupportConfig()
        self.cache_size = cache_size
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def sentence_vectors(self, texts: list[str]) -> np.ndarray:
        found: dict[str, np.ndarray] = {}
        with self._lock:
            for text in texts:
                if text in self._cache:
                    self._cache.move_to_end(text)
                    found[text] = self._cache[text]
        missing = [t for t in dict.fromkeys(texts) if t not in found]
        if missing:
            found.update(zip(missing, self.embedder.embed_documents(missing), strict=True))
            with self._lock:
                for text in missing:
                    self._cache[text] = found[text]
                while len(self._cache) > self.cache_size:
                    self._cache.popitem(last=False)
        return np.stack([found[t] for t in texts])

    def components(self, sentences: Sequence[str], passages: Sequence[str]) -> Components:
        """Every part of support; passage sentences are embedded in one batch per call."""
        clean = [strip_markers(s) for s in sentences]
        pieces = [split_sentences(p, unwrap=True) or [p] for p in passages]
        shape = (len(clean), len(passages))
        if not clean or not passages:
            return Components(np.zeros(shape), np.zeros(shape), np.zeros(shape, bool), [])
        piece_vecs = self.sentence_vectors([x for piece in pieces for x in piece])
        sent_vecs = np.stack([self.embedder.embed_query(s) for s in clean])
        sims = sent_vecs @ piece_vecs.T
        lexical, cosine = np.zeros(shape), np.zeros(shape)
        best: list[list[str]] = [[] for _ in clean]
        tokens = [set(segment(p)) for p in passages]
        words = [set(content_words(s)) for s in clean]
        offset = 0
        for j, piece in enumerate(pieces):
            block = sims[:, offset : offset + len(piece)]
            offset += len(piece)
            piece_words = [set(segment(x)) for x in piece]
            for i in range(len(clean)):
                # The supporting sentence: closest in meaning and in words, so that the claim
                # check (agent/claims.py) reads the sentence that makes the same statement.
                n_words = max(len(words[i]), 1)
                shared = [len(words[i] & w) / n_words for w in piece_words]
                k = int(np.argmax(block[i] + np.asarray(shared)))
                cosine[i, j] = float(block[i].max())
                best[i].append(piece[k])
                lexical[i, j] = len(words[i] & tokens[j]) / len(words[i]) if words[i] else 0.0
        s_lang = np.array([detect_lang(s) for s in clean])[:, None]
        p_lang = np.array([detect_lang(p) for p in passages])[None, :]
        return Components(lexical, cosine, s_lang != p_lang, best)

    def scores(
        self, sentences: Sequence[str], passages: Sequence[str]
    ) -> list[list[tuple[float, str]]]:
        """For each sentence and passage: (support in [0, 1], the passage's best sentence)."""
        parts = self.components(sentences, passages)
        table = combine(parts, self.config)
        return [
            [(float(table[i, j]), parts.best[i][j]) for j in range(len(passages))]
            for i in range(len(sentences))
        ]

    def support(self, sentence: str, passage: str) -> tuple[float, str]:
        """(support in [0, 1], the passage sentence that supports it best)."""
        return self.scores([sentence], [passage])[0][0]


def citation(n: int, hit: Hit, sentence: str, support: float, best: str, ok: bool) -> Citation:
    """The Citation of passage `n` (1-based) for an answer sentence."""
    return Citation(
        n=n,
        doc_id=hit.doc_id,
        kb=hit.kb,
        chunk_id=hit.chunk_id,
        title=hit.title,
        snippet=hit.text[:300],
        sentence=sentence,
        support=round(support, 4),
        supporting_text=best,
        verified=ok,
    )


# Pronouns claim nothing: "…, we will inform you immediately" must not pass on a passage's "we"
# and "us" (seen asking our own dental-practice page; "inform" and "immediately" are in no passage).
_PRONOUNS = frozenset({
    "i", "me", "my", "mine", "we", "us", "our", "ours", "you", "your", "yours", "he", "him", "his",
    "she", "her", "hers", "they", "them", "their", "theirs",
    "我", "你", "您", "他", "她", "它", "我们", "你们", "他们", "她们", "它们",
})  # fmt: skip


def supports(
    sentence: str, score: float, best: str, passage: str, question: str, threshold: float
) -> bool:
    """Whether a passage supports an answer sentence: the support score clears `threshold`, every
    number, negation and name matches the passage sentence that supports it (agent/claims.py),
    and the sentence says something the question did not ("…是确定的，不是确定的" restates it).
    """
    if score < threshold or not check_claim(sentence, best, passage, question).ok:
        return False
    if not question:
        return True
    asked = set(segment(question))
    new = {w for w in content_words(sentence) if w not in asked and w not in _PRONOUNS}
    if not new:  # only the question's words: it claims something only with a number of its own
        given = quantities(question)
        return any(not any(q.matches(g) for g in given) for q in quantities(sentence))
    # What the sentence adds to the question is what it claims: most of it must be in the
    # passage, and some of it in the supporting sentence (a wrong answer put in fails here).
    in_passage = len(new & set(segment(passage))) / len(new)
    return in_passage >= 0.5 and bool(new & set(segment(best)))


def verify(
    answer: str, passages: Sequence[Hit], scorer: SupportScorer, question: str = ""
) -> Verified:
    """Check every [n] against passage n (1-based); drop dangling markers, flag unsupported ones.

    A sentence whose markers all fail, or that has none, gets the passage that supports it best
    when one does, so every claim that can be checked is cited. Sentences nothing supports
    (`supports`) are listed in `unsupported_sentences` and left out of `grounded`, and so are
    questions: a model restating the question scores high but claims nothing.
    """
    threshold = scorer.config.threshold
    sentences = split_sentences(answer)
    texts = [p.text for p in passages]
    table = scorer.scores(sentences, texts)
    full: list[str] = []
    grounded: list[str] = []
    citations: list[Citation] = []
    unsupported: list[str] = []
    said: set[str] = set()
    for sentence, row in zip(sentences, table, strict=True):
        clean = strip_markers(sentence)
        if _key(clean) in said:  # a small model repeating itself says nothing new
            continue
        said.add(_key(clean))
        if clean.endswith(("?", "？")):
            full.append(clean)
            unsupported.append(clean)
            continue
        cited = [n for n in markers(sentence) if 1 <= n <= len(passages)]
        ok = [supports(clean, *row[j], texts[j], question, threshold) for j in range(len(row))]
        good = [n for n in cited if ok[n - 1]]
        if not good and any(ok):
            best_n = max((j for j in range(len(row)) if ok[j]), key=lambda j: row[j][0]) + 1
            good = [best_n]
            cited = [*cited, best_n] if best_n not in cited else cited
        for n in cited:
            score, best = row[n - 1]
            citations.append(citation(n, passages[n - 1], clean, score, best, n in good))
        full.append(with_markers(clean, cited))
        if good:
            grounded.append(with_markers(clean, good))
        else:
            unsupported.append(clean)
    joiner = "" if has_cjk(answer[:50]) else " "
    return Verified(joiner.join(full), joiner.join(grounded), tuple(citations), tuple(unsupported))


def _key(sentence: str) -> str:
    return "".join(ch for ch in sentence.lower() if ch.isalnum())
