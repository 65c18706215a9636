"""From case records to numbers: per-case scores, then the flat metrics of summary.json.

Per-case scores (`case_scores`) are kept with each record, so reports can sort cases and the paired
bootstrap (evals/compare.py) can resample them; `aggregate` turns any list of records into the
flat metrics, so a resample is scored exactly like the run. A metric appears only where it
applies: `answer.em` needs span cases, `refusal.*` needs refuse cases, and so on.

- retrieval.*: the retriever's documents for the rewritten query (depth 30) against gold.
- answer.em / answer.f1 / answer.contains (span): SQuAD normalization in English, characters in
  Chinese (evals/answer_metrics.py); `contains` asks whether every answer part occurs in the
  answer, as RGB scores. A refused answerable case scores 0.
- answer.yesno_accuracy (yesno), answer.rouge_l / answer.bleu (free, against `reference`).
- refusal.precision / recall: refusing is the positive class, `refuse` cases the gold positives;
  answer_rate: share of answerable cases not refused.
- faithfulness: mean over answered knowledge turns (not refused, not routed to chit-chat or a
  clarifying question) of the share of answer sentences that a passage they cite supports
  (evals/grounding.py), with the citation verifier's own score and threshold.
- citation.precision / recall: verified cited documents against gold, over answered knowledge
  turns with gold (precision only where something was cited).
- latency.*: ttft from the start of the turn to the first generated token; total to the reply.
  tokens_per_s: tokens after the first over the time from the first to the last, summed over
  cases (decode speed; prefill is in ttft). Under batching these are not streamed figures.
- route.knowledge_rate: share of cases the router sent to retrieval at all.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Sequence
from statistics import fmean

from agent.grounding import QUOTE
from agent.markers import strip_markers
from evals.answer_metrics import (
    answer_contains,
    bleu,
    exact_match,
    percentile,
    rouge_l,
    token_f1,
    yesno_correct,
)
from evals.metrics import retrieval_scores
from evals.runstore import CaseRecord

# The agent's fixed lead-in to a quoted passage sentence (agent/grounding.py QUOTE) is not an
# answer word; scoring it would penalize the quote for its framing.
_LEADS = tuple(lead.split("{text}")[0].strip() for lead in QUOTE.values())


def answer_text(answer: str) -> str:
    """The answer without citation markers or the quote lead-in."""
    text = strip_markers(answer)
    for lead in _LEADS:
        text = text.replace(lead, "")
    return text.strip()


def case_scores(record: CaseRecord) -> dict[str, float]:
    """The per-case scores that apply to this record's answer type."""
    scores: dict[str, float] = {}
    if record.gold_doc_ids:
        for key, value in retrieval_scores(record.ranked_ids, record.gold_doc_ids).items():
            scores[f"retrieval.{key}"] = value
    text, lang, kind = answer_text(record.answer), record.lang or None, record.answer_type
    if kind == "span" and record.answers:
        scores["answer.em"] = 0.0 if record.refused else exact_match(text, record.answers, lang)
        scores["answer.f1"] = 0.0 if record.refused else token_f1(text, record.answers, lang)
        contained = answer_contains(text, record.answers, lang)
        scores["answer.contains"] = 0.0 if record.refused else contained
    elif kind == "yesno" and record.answers:
        scores["answer.yesno_accuracy"] = (
            0.0 if record.refused else yesno_correct(text, record.answers)
        )
    elif kind == "free" and record.reference:
        scores["answer.rouge_l"] = 0.0 if record.refused else rouge_l(text, record.reference, lang)
        scores["answer.bleu"] = 0.0 if record.refused else bleu(text, record.reference, lang)
    answered = (
        record.intent == "knowledge" and not record.refused
    )  # a clarifying reply claims nothing
    if answered and record.n_sentences:
        scores["faithfulness"] = record.n_supported / record.n_sentences
    verified = [c for c in record.citations if c.get("verified")]
    if answered and verified:
        invented = sum(not c.get("numbers_in_passage", True) for c in verified)
        scores["citation.unsupported_number_rate"] = invented / len(verified)
    if answered and record.gold_doc_ids:
        cited = {c["doc_id"] for c in record.citations if c.get("verified")}
        gold = set(record.gold_doc_ids)
        scores["citation.recall"] = len(cited & gold) / len(gold)
        if cited:
            scores["citation.precision"] = len(cited & gold) / len(cited)
    return scores


def rescored(records: Iterable[CaseRecord]) -> list[CaseRecord]:
    """Records with their scores recomputed under the current definitions, so a report or a
    comparison of older runs scores every run the same way (the stored scores are a cache)."""
    return [dataclasses.replace(r, scores=case_scores(r)) for r in records]


def _refusal(records: Sequence[CaseRecord]) -> dict[str, float]:
    should = [r.answer_type == "refuse" for r in records]
    did = [r.refused for r in records]
    out: dict[str, float] = {}
    answerable = [d for s, d in zip(should, did, strict=True) if not s]
    if answerable:
        out["answer_rate"] = 1 - sum(answerable) / len(answerable)
    if any(should):
        hits = sum(s and d for s, d in zip(should, did, strict=True))
        out["refusal.recall"] = hits / sum(should)
        if any(did):
            out["refusal.precision"] = hits / sum(did)
    return out


def _latency(records: Sequence[CaseRecord]) -> dict[str, float]:
    out: dict[str, float] = {}
    ttft = [r.timings["ttft_ms"] for r in records if "ttft_ms" in r.timings]
    total = [r.timings["total_ms"] for r in records if "total_ms" in r.timings]
    if ttft:
        out["latency.ttft_p50_ms"] = percentile(ttft, 50)
        out["latency.ttft_p95_ms"] = percentile(ttft, 95)
    if total:
        out["latency.total_p50_ms"] = percentile(total, 50)
        out["latency.total_p95_ms"] = percentile(total, 95)
    decoding = [r.timings for r in records if r.timings.get("gen_ms", 0) > 0]
    if decoding:
        tokens = sum(t["new_tokens"] - 1 for t in decoding)  # the first one came with ttft
        out["tokens_per_s"] = tokens / (sum(t["gen_ms"] for t in decoding) / 1000)
    return out


def aggregate(records: Sequence[CaseRecord]) -> dict[str, float]:
    """The flat metrics of a set of records (means of per-case scores, ratios, percentiles)."""
    by_key: dict[str, list[float]] = {}
    for record in records:
        for key, value in record.scores.items():
            by_key.setdefault(key, []).append(value)
    metrics = {key: fmean(values) for key, values in sorted(by_key.items())}
    metrics.update(_refusal(records))
    metrics.update(_latency(records))
    if records:
        metrics["route.knowledge_rate"] = fmean(r.intent == "knowledge" for r in records)
    return metrics


def breakdown(
    records: Sequence[CaseRecord], key: Callable[[CaseRecord], str]
) -> dict[str, dict[str, float]]:
    """`aggregate` per value of `key` (domain, language...), with the case count as "n"."""
    groups: dict[str, list[CaseRecord]] = {}
    for record in records:
        groups.setdefault(key(record), []).append(record)
    return {
        name: {"n": float(len(rows)), **aggregate(rows)} for name, rows in sorted(groups.items())
    }
