"""Calibrate the support score: the citation floor and threshold, and the evidence-gate threshold.

    python -m evals.support_calibration [--per-set 80] [--gate-cases 40]

Citations (XQuAD en and zh): an answer sentence is a case's question restated with its gold answer
("When did Scheele discover oxygen: 1773."). It is scored against its gold passage (should verify),
a paragraph of the same article that lacks the answer and a paragraph of another article (should
not), and, as limitation checks, against the gold passage with another case's answer put in
and with the answer of another question about the same passage (`other_answer`, verify only).
Cross-lingual rows pair each sentence with the parallel paragraphs of the other language.

Gate: a question's strength against its top 5 passages, answerable (XQuAD with its article in the
corpus; RGB-zh's positive group) against not answerable (XQuAD with the question's article left
out: the "not covered" case; RGB-zh's negative group: related news that lacks the answer). The
top 5 are ranked by content-word overlap, a stand-in for hybrid search that needs no index.
agent/citations.py and agent/gate.py record the choices.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import random
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from agent.citations import Components, SupportConfig, SupportScorer, combine, supports
from evals.sets import Case, load_set
from retrieval.embedders import load_embedder
from retrieval.lexical import content_words, segment
from retrieval.types import Hit

KINDS = ("gold", "same_article", "random", "wrong_answer")
DEFAULT_EVALSETS = Path(__file__).resolve().parents[2] / "shared" / "evalsets"
THRESHOLDS = np.arange(0.3, 0.7, 0.025)


def restate(case: Case, answer: str) -> str:
    """The question turned into a claim with `answer`, the shape a cited answer sentence has."""
    if case.lang == "zh":
        return f"{case.question.rstrip('？? ')}：{answer}。"
    return f"{case.question.rstrip('? ')}: {answer}."


def article(doc_id: str) -> str:
    return doc_id.rsplit("-", 1)[0]  # "xq-12-3" -> "xq-12"


def read_corpus(path: Path) -> dict[str, tuple[str, str]]:
    """doc id -> (text, group)."""
    with path.open(encoding="utf-8") as f:
        return {row["id"]: (row["text"], row["group"]) for row in map(json.loads, f)}


def pairs(
    cases: Sequence[Case], corpus: dict[str, str], rng: random.Random
) -> list[tuple[str, str, str]]:
    """(kind, sentence, passage id) for every case: one pair of each kind."""
    out = []
    ids = sorted(corpus)
    for case in cases:
        gold, answer = case.gold_doc_ids[0], case.answers[0]
        same = [d for d in ids if article(d) == article(gold) and answer not in corpus[d]]
        other = [d for d in ids if article(d) != article(gold)]
        wrong = rng.choice([c for c in cases if c.answers[0] not in corpus[gold]]).answers[0]
        out.append(("gold", restate(case, answer), gold))
        if same:
            out.append(("same_article", restate(case, answer), rng.choice(same)))
        out.append(("random", restate(case, answer), rng.choice(other)))
        out.append(("wrong_answer", restate(case, wrong), gold))
    return out


def balanced_accuracy(scores: dict[str, np.ndarray], threshold: float) -> float:
    """Mean of: gold pairs verified, and negatives (same article and random, equally) rejected."""
    pos = float((scores["gold"] >= threshold).mean())
    neg = np.mean([(scores[k] < threshold).mean() for k in ("same_article", "random")])
    return (pos + float(neg)) / 2


Measured = dict[str, tuple[Components, list[str], list[tuple[int, int]]]]


def citation_tables(scorer: SupportScorer, evalsets: Path, per_set: int, seed: int) -> Measured:
    """Per set: the components of every (sentence, passage) pair and which kind each pair is.

    "xquad-en>zh" pairs English sentences with the parallel Chinese paragraphs (same ids).
    """
    corpora = {}
    for name in ("xquad-en", "xquad-zh"):
        corpora[name] = {
            d: t for d, (t, _) in read_corpus(evalsets / name / "corpus.jsonl").items()
        }
    measured: Measured = {}
    for name, other in (("xquad-en", "xquad-zh"), ("xquad-zh", "xquad-en")):
        evalset = load_set(evalsets / name)
        rng = random.Random(seed)
        usable = [c for c in evalset.cases if c.answer_type == "span" and c.gold_doc_ids]
        rows = pairs(rng.sample(usable, min(per_set, len(usable))), corpora[name], rng)
        sentences = list(dict.fromkeys(s for _, s, _ in rows))
        doc_ids = list(dict.fromkeys(d for _, _, d in rows))
        cells = [(sentences.index(s), doc_ids.index(d)) for _, s, d in rows]
        kinds = [kind for kind, _, _ in rows]
        for corpus, label in ((name, name), (other, f"{name}>{other[-2:]}")):
            parts = scorer.components(sentences, [corpora[corpus][d] for d in doc_ids])
            measured[label] = (parts, kinds, cells)
    return measured


def by_kind(
    parts: Components, config: SupportConfig, kinds: list[str], cells: list[tuple[int, int]]
) -> dict[str, np.ndarray]:
    """Support of each pair under `config`, grouped by the pair's kind."""
    table = combine(parts, config)
    values = np.array([table[i, j] for i, j in cells])
    return {k: values[np.array([kind == k for kind in kinds])] for k in KINDS}


def report_citations(measured: Measured, default: SupportConfig) -> None:
    for name, (parts, kinds, cells) in measured.items():
        cos = np.array([parts.cosine[i, j] for i, j in cells])
        lex = np.array([parts.lexical[i, j] for i, j in cells])
        sup = by_kind(parts, default, kinds, cells)
        print(f"\n## citations, {name}: {len(cells)} pairs")
        print("| pair | cosine p10/p50/p90 | lexical p50 | support p10/p50/p90 |")
        print("|---|---|---|---|")
        for k in KINDS:
            mask = np.array([kind == k for kind in kinds])
            c, s = np.percentile(cos[mask], [10, 50, 90]), np.percentile(sup[k], [10, 50, 90])
            print(f"| {k} | {c.round(2)} | {np.median(lex[mask]):.2f} | {s.round(2)} |")
        acc = balanced_accuracy(sup, default.threshold)
        wrong = (sup["wrong_answer"] >= default.threshold).mean()
        print(f"{default}: balanced accuracy {acc:.3f}, wrong answers verified {wrong:.2f}")
    same = [v for k, v in measured.items() if ">" not in k]
    cross = [v for k, v in measured.items() if ">" in k]
    print("\n| floor | lexical weight | best shared threshold | mean balanced accuracy |")
    print("|---|---|---|---|")
    for floor in (0.70, 0.75, 0.78, 0.80, 0.82):
        for weight in (0.3, 0.5, 0.7):
            config = SupportConfig(0.5, floor, weight)
            tables = [by_kind(p, config, k, c) for p, k, c in same]
            acc, t = max(
                (float(np.mean([balanced_accuracy(tb, th) for tb in tables])), float(th))
                for th in THRESHOLDS
            )
            print(f"| {floor:.2f} | {weight:.1f} | {t:.3f} | {acc:.3f} |")
    print(f"\ncross-lingual, at threshold {default.threshold}:")
    print("| cross floor | cross ceiling | mean balanced accuracy |")
    print("|---|---|---|")
    for floor in (0.72, 0.74, 0.76):
        for ceiling in (0.80, 0.82, 0.84, 0.86):
            config = dataclasses.replace(default, cross_floor=floor, cross_ceiling=ceiling)
            tables = [by_kind(p, config, k, c) for p, k, c in cross]
            acc = float(np.mean([balanced_accuracy(tb, default.threshold) for tb in tables]))
            print(f"| {floor:.2f} | {ceiling:.2f} | {acc:.3f} |")


def verify_rates(scorer: SupportScorer, evalsets: Path, per_set: int, seed: int) -> None:
    """Share of each kind of pair that `verify`'s full check passes: the support score and the
    claim checks (agent/citations.py `supports`), with the case's question. The `… kept` columns
    add what an answer also needs to keep a verified sentence (agent/grounding.py `_answering`):
    the passage sentence it rests on is one the evidence scorer finds likely to answer."""
    from agent.evidence import EvidenceFinder

    finder = EvidenceFinder(scorer)
    print("\n## verified by the full check (support + numbers, negation, names, new words)")
    kinds = (*KINDS, "other_answer", "gold kept", "other_answer kept")
    print("| set | " + " | ".join(kinds) + " |")
    print("|---|" + "---|" * len(kinds))
    for name in ("xquad-en", "xquad-zh"):
        corpus = {d: t for d, (t, _) in read_corpus(evalsets / name / "corpus.jsonl").items()}
        evalset = load_set(evalsets / name)
        rng = random.Random(seed)
        usable = [c for c in evalset.cases if c.answer_type == "span" and c.gold_doc_ids]
        chosen = rng.sample(usable, min(per_set, len(usable)))
        passed: dict[str, list[bool]] = {k: [] for k in kinds}
        at = -1
        checked = []
        for kind, sentence, doc in pairs(chosen, corpus, rng):
            at += kind == "gold"  # each case's pairs start with its gold one
            checked.append((kind, sentence, doc, chosen[at]))
        checked += [("other_answer", *pair) for pair in other_answers(chosen, usable, rng)]
        for kind, sentence, doc, case in checked:
            score, best = scorer.support(sentence, corpus[doc])
            threshold = scorer.config.threshold
            ok = supports(sentence, score, best, corpus[doc], case.question, threshold)
            passed[kind].append(ok)
            if kind in ("gold", "other_answer"):
                ranked = finder.rank(case.question, [Hit(0, doc, name, 1.0, corpus[doc])], top=1)
                likely = {e.sentence for e in ranked if e.score >= finder.model.threshold}
                passed[f"{kind} kept"].append(ok and best in likely)
        rates = " | ".join(f"{np.mean(passed[k]):.2f} ({len(passed[k])})" for k in kinds)
        print(f"| {name} | {rates} |")


def other_answers(
    chosen: Sequence[Case], usable: Sequence[Case], rng: random.Random
) -> list[tuple[str, str, Case]]:
    """(sentence, gold passage id, case): the question restated with the answer of another
    question about the same passage. The passage holds that answer too, so only a check of what
    the sentence claims against what was asked can reject it."""
    by_doc: dict[str, list[str]] = {}
    for c in usable:
        by_doc.setdefault(c.gold_doc_ids[0], []).append(c.answers[0])
    out = []
    for case in chosen:
        mine = case.answers[0]
        others = [
            a
            for a in by_doc[case.gold_doc_ids[0]]
            if a not in mine and mine not in a and a not in case.question
        ]
        if others:
            out.append((restate(case, rng.choice(others)), case.gold_doc_ids[0], case))
    return out


def top5(question: str, ids: Sequence[str], corpus: dict[str, tuple[str, str]]) -> list[str]:
    words = set(content_words(question))
    overlap = {d: len(words & set(segment(corpus[d][0]))) for d in ids}
    return sorted(ids, key=lambda d: -overlap[d])[:5]


def gate_strengths(
    scorer: SupportScorer, evalsets: Path, n: int, seed: int
) -> dict[str, np.ndarray]:
    """Strength (best support of the question by its top 5) per kind of question."""
    questions: dict[str, list[tuple[str, list[str]]]] = {}  # kind -> (question, top 5 texts)

    def add(kind: str, question: str, ids: list[str], corpus: dict[str, tuple[str, str]]) -> None:
        ranked = [corpus[d][0] for d in top5(question, ids, corpus)]
        questions.setdefault(kind, []).append((question, ranked))

    for name in ("xquad-en", "xquad-zh"):
        evalset = load_set(evalsets / name)
        corpus = read_corpus(evalset.corpus)
        for c in random.Random(seed).sample([c for c in evalset.cases if c.gold_doc_ids], n):
            others = [d for d in corpus if article(d) != article(c.gold_doc_ids[0])]
            add(f"{name} covered", c.question, list(corpus), corpus)
            add(f"{name} not covered", c.question, others, corpus)
    evalset = load_set(evalsets / "rgb-zh")
    corpus = read_corpus(evalset.corpus)
    groups: dict[str, list[str]] = {}
    for d, (_, g) in corpus.items():
        groups.setdefault(g, []).append(d)
    refuse = [c for c in evalset.cases if c.answer_type == "refuse" and c.group in groups]
    for c in random.Random(seed).sample(refuse, n):
        add("rgb-zh answer", c.question, groups.get(c.group.removesuffix("-neg"), []), corpus)
        add("rgb-zh refuse", c.question, groups[c.group], corpus)
    out = {}
    for kind, items in questions.items():
        texts = list(dict.fromkeys(t for _, ranked in items for t in ranked))
        table = scorer.scores([q for q, _ in items], texts)
        col = {t: j for j, t in enumerate(texts)}
        out[kind] = np.array(
            [max(table[i][col[t]][0] for t in ranked) for i, (_, ranked) in enumerate(items)]
        )
    return out


def report_gate(strengths: dict[str, np.ndarray]) -> None:
    print("\n## gate: strength p10/p50/p90")
    for kind, s in strengths.items():
        print(f"- {kind} ({len(s)}): {np.percentile(s, [10, 50, 90]).round(3)}")
    answer = [k for k in strengths if k.endswith(("covered", "answer")) and "not" not in k]
    refuse = [k for k in strengths if k not in answer]
    print("\n| threshold | answered (answerable) | refused (not covered) | refused (rgb neg) |")
    print("|---|---|---|---|")
    for t in THRESHOLDS:
        ans = np.mean([(strengths[k] >= t).mean() for k in answer])
        off = np.mean([(strengths[k] < t).mean() for k in refuse if "not covered" in k])
        rgb = (strengths["rgb-zh refuse"] < t).mean()
        print(f"| {t:.3f} | {ans:.2f} | {off:.2f} | {rgb:.2f} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--evalsets", default=str(DEFAULT_EVALSETS))
    ap.add_argument("--per-set", type=int, default=80, help="citation cases per language")
    ap.add_argument("--gate-cases", type=int, default=40, help="gate questions per kind")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--verify-only", action="store_true", help="only the full-check table")
    args = ap.parse_args()
    if args.verify_only:
        scorer = SupportScorer(load_embedder("bundled:e5"))
        verify_rates(scorer, Path(args.evalsets), args.per_set, args.seed)
        return
    scorer = SupportScorer(load_embedder("bundled:e5"))
    evalsets = Path(args.evalsets)
    if args.per_set:
        report_citations(citation_tables(scorer, evalsets, args.per_set, args.seed), scorer.config)
        verify_rates(scorer, evalsets, args.per_set, args.seed)
    if args.gate_cases:
        report_gate(gate_strengths(scorer, evalsets, args.gate_cases, args.seed))


if __name__ == "__main__":
    main()
