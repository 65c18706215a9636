"""Answer-quality metrics as pure functions: EM/F1, yes/no accuracy, ROUGE-L, BLEU, percentiles.

English text is compared as SQuAD does (lowercase, punctuation and articles a/an/the removed,
whitespace tokens); Chinese text character by character (punctuation and spaces removed), as the
CMRC/DuReader scorers do, because Chinese has no spaces and word segmenters disagree. ROUGE-L and
BLEU are written here rather than taken from `rouge-score` (its tokenizer drops every non-ASCII
character, so Chinese scores 0) or `sacrebleu` (not a dependency; its corpus BLEU would not give
the per-case scores the paired bootstrap in evals/compare.py resamples).
"""

from __future__ import annotations

import math
import re
import string
import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence

from retrieval.lang import has_cjk

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCT = set(string.punctuation)


def _is_punct(ch: str) -> bool:
    return ch in _PUNCT or unicodedata.category(ch).startswith("P")


def normalize_en(text: str) -> str:
    """SQuAD v1.1 normalization.

    >>> normalize_en("The  Eiffel Tower, in Paris!")
    'eiffel tower in paris'
    """
    text = "".join(ch for ch in text.lower() if not _is_punct(ch))
    return " ".join(_ARTICLES.sub(" ", text).split())


def tokens(text: str, lang: str | None = None) -> list[str]:
    """Words for English, characters for Chinese (or any text holding CJK characters).

    >>> tokens("The cat sat."), tokens("北京，中国", "zh")
    (['cat', 'sat'], ['北', '京', '中', '国'])
    """
    if lang == "zh" or (lang is None and has_cjk(text)):
        return [ch for ch in text.lower() if not ch.isspace() and not _is_punct(ch)]
    return normalize_en(text).split()


def exact_match(prediction: str, answers: Iterable[str], lang: str | None = None) -> float:
    """1.0 when the normalized prediction equals any normalized answer."""
    pred = tokens(prediction, lang)
    return float(any(pred == tokens(a, lang) for a in answers))


def token_f1(prediction: str, answers: Iterable[str], lang: str | None = None) -> float:
    """Best bag-of-tokens F1 against any answer (SQuAD), characters for Chinese.

    >>> round(token_f1("the big cat", ["a cat"]), 4)
    0.6667
    """
    pred = tokens(prediction, lang)
    best = 0.0
    for answer in answers:
        gold = tokens(answer, lang)
        common = sum((Counter(pred) & Counter(gold)).values())
        if common:
            p, r = common / len(pred), common / len(gold)
            best = max(best, 2 * p * r / (p + r))
    return best


def answer_contains(prediction: str, answers: Sequence[str], lang: str | None = None) -> float:
    """1.0 when every answer part occurs in the prediction (RGB's scorer: required parts).

    Long generated answers rarely match a short span exactly; this asks whether the span is in it.
    A currency sign is a token of its own, so "£48" holds the answer "48" and "$48" not "£48".

    >>> answer_contains("It costs £48 [1].", ["48"]), answer_contains("$48", ["£48"])
    (1.0, 0.0)
    """

    def words(text: str) -> str:
        signs = "".join(f" {ch} " if unicodedata.category(ch) == "Sc" else ch for ch in text)
        return f" {' '.join(tokens(signs, lang))} "  # spaces: whole tokens, "no" not in "not"

    pred = words(prediction)
    return float(bool(answers) and all(words(a) in pred for a in answers))


# The first decision word wins: "No, ... may be" is a no. Chinese 不是/不能 before 是/能.
_YESNO_EN = re.compile(r"\b(yes|no|not|maybe|perhaps|possibly|uncertain|unclear)\b")
_YESNO_ZH = re.compile(
    r"(不确定|不一定|可能|也许|或许|不是|不可以|不能|不会|没有|否|不|是的|是|对|可以|能|会)"
)
_LABEL = {
    "yes": "yes",
    "no": "no",
    "not": "no",
    "maybe": "maybe",
    "perhaps": "maybe",
    "possibly": "maybe",
    "uncertain": "maybe",
    "unclear": "maybe",
}
_LABEL_ZH = dict.fromkeys(("是", "是的", "对", "可以", "能", "会"), "yes")
_LABEL_ZH.update(dict.fromkeys(("不确定", "不一定", "可能", "也许", "或许"), "maybe"))
_LABEL_ZH.update(dict.fromkeys(("不是", "不可以", "不能", "不会", "没有", "否", "不"), "no"))


def extract_yesno(answer: str) -> str | None:
    """The yes / no / maybe an answer commits to first, or None when it says none of them.

    >>> extract_yesno("No, the trial found no effect."), extract_yesno("可能有关。")
    ('no', 'maybe')
    """
    if has_cjk(answer):
        m = _YESNO_ZH.search(answer)
        return _LABEL_ZH[m.group(1)] if m else None
    m = _YESNO_EN.search(answer.lower())
    return _LABEL[m.group(1)] if m else None


def yesno_correct(answer: str, gold: Iterable[str]) -> float:
    """1.0 when the extracted label is one of the gold labels (yes / no / maybe)."""
    label = extract_yesno(answer)
    return float(label is not None and label in {g.strip().lower() for g in gold})


def _lcs(a: Sequence[str], b: Sequence[str]) -> int:
    row = [0] * (len(b) + 1)
    for x in a:
        prev = 0
        for j, y in enumerate(b, 1):
            prev, row[j] = row[j], prev + 1 if x == y else max(row[j], row[j - 1])
    return row[-1]


def rouge_l(prediction: str, reference: str, lang: str | None = None) -> float:
    """ROUGE-L F1 (beta = 1) over `tokens`: longest common subsequence against both lengths.

    >>> rouge_l("the cat sat on the mat", "the cat lay on a mat")  # LCS cat on mat, 4 words each
    0.75
    """
    pred, ref = tokens(prediction, lang), tokens(reference, lang)
    lcs = _lcs(pred, ref)
    if not lcs:
        return 0.0
    p, r = lcs / len(pred), lcs / len(ref)
    return 2 * p * r / (p + r)


def _ngrams(seq: Sequence[str], n: int) -> Counter[tuple[str, ...]]:
    return Counter(tuple(seq[i : i + n]) for i in range(len(seq) - n + 1))


def bleu(prediction: str, reference: str, lang: str | None = None, max_n: int = 4) -> float:
    """Sentence BLEU-4 in [0, 1]: clipped n-gram precisions, brevity penalty, add-one smoothing
    of the n > 1 precisions (Lin & Och 2004), so one missing 4-gram does not zero a long answer.

    >>> bleu("a b c d", "a b c d")
    1.0
    """
    pred, ref = tokens(prediction, lang), tokens(reference, lang)
    if not pred or not ref:
        return 0.0
    logs = []
    for n in range(1, max_n + 1):
        matched = sum((_ngrams(pred, n) & _ngrams(ref, n)).values())
        total = max(len(pred) - n + 1, 0)
        if n == 1:
            if not matched:
                return 0.0
            logs.append(math.log(matched / total))
        else:
            logs.append(math.log((matched + 1) / (total + 1)))
    brevity = min(0.0, 1 - len(ref) / len(pred))
    return math.exp(brevity + sum(logs) / max_n)


def percentile(values: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile (numpy's default), q in [0, 100].

    >>> percentile([10, 20, 30, 40], 50)
    25.0
    """
    if not values:
        raise ValueError("percentile of no values")
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100
    lo, hi = math.floor(pos), math.ceil(pos)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)
