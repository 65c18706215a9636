"""Choose the citation-support floor and threshold by measurement on XQuAD (en and zh).

    python -m evals.support_calibration [--per-set 80]

An answer sentence is a case's question restated with its gold answer ("When did Scheele discover
oxygen: 1773."). It is scored against its gold passage (should verify), a paragraph of the same
article that lacks the answer and a paragraph of another article (should not), and, as a
limitation check, the gold passage with another case's answer put in. Prints percentiles per pair
kind and the balanced accuracy of each config; agent/citations.py records the choice.
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

import numpy as np

from agent.citations import SupportConfig, SupportScorer, combine
from evals.sets import Case, load_set
from retrieval.embedders import load_embedder

SETS = ("xquad-en", "xquad-zh")
KINDS = ("gold", "same_article", "random", "wrong_answer")
DEFAULT_EVALSETS = Path(__file__).resolve().parents[2] / "shared" / "evalsets"


def restate(case: Case, answer: str) -> str:
    """The question turned into a claim with `answer`, the shape a cited answer sentence has."""
    if case.lang == "zh":
        return f"{case.question.rstrip('？? ')}：{answer}。"
    return f"{case.question.rstrip('? ')}: {answer}."


def article(doc_id: str) -> str:
    return doc_id.rsplit("-", 1)[0]  # "xq-12-3" -> "xq-12"


def pairs(
    cases: list[Case], corpus: dict[str, str], rng: random.Random
) -> list[tuple[str, str, str]]:
    """(kind, sentence, passage id) for every case: one pair of each kind."""
    out = []
    ids = sorted(corpus)
    for case in cases:
        gold = case.gold_doc_ids[0]
        answer = case.answers[0]
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


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--evalsets", default=str(DEFAULT_EVALSETS))
    ap.add_argument("--per-set", type=int, default=80, help="cases per language")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    scorer = SupportScorer(load_embedder("bundled:e5"))
    default = scorer.config
    measured = {}
    for name in SETS:
        evalset = load_set(Path(args.evalsets) / name)
        with evalset.corpus.open(encoding="utf-8") as f:
            corpus = {row["id"]: row["text"] for row in map(json.loads, f)}
        rng = random.Random(args.seed)
        usable = [c for c in evalset.cases if c.answer_type == "span" and c.gold_doc_ids]
        rows = pairs(rng.sample(usable, min(args.per_set, len(usable))), corpus, rng)
        sentences = list(dict.fromkeys(s for _, s, _ in rows))
        doc_ids = list(dict.fromkeys(d for _, _, d in rows))
        parts = scorer.components(sentences, [corpus[d] for d in doc_ids])
        kinds = [kind for kind, _, _ in rows]
        cells = [(sentences.index(s), doc_ids.index(d)) for _, s, d in rows]
        measured[name] = (parts, kinds, cells)

        def by_kind(table: np.ndarray, kinds=kinds, cells=cells) -> dict[str, np.ndarray]:
            values = np.array([table[i, j] for i, j in cells])
            return {k: values[[kind == k for kind in kinds]] for k in KINDS}

        print(f"\n## {name}: {len(rows)} pairs from {args.per_set} of {len(usable)} span cases")
        cos, lex = by_kind(parts.cosine), by_kind(parts.lexical)
        sup = by_kind(combine(parts, default))
        print("| pair | cosine p10/p50/p90 | lexical p50 | support p10/p50/p90 |")
        print("|---|---|---|---|")
        for k in KINDS:
            c, s = np.percentile(cos[k], [10, 50, 90]), np.percentile(sup[k], [10, 50, 90])
            print(f"| {k} | {c.round(2)} | {np.median(lex[k]):.2f} | {s.round(2)} |")
    print(f"\ndefault {default}")
    print("| floor | lexical weight | threshold | " + " | ".join(
        f"{n} bal. acc | {n} wrong answers verified" for n in SETS) + " | mean bal. acc |")
    print("|---|---|---|" + "---|---|" * len(SETS) + "---|")
    for floor in (0.70, 0.75, 0.78, 0.80, 0.82):
        for weight in (0.3, 0.5, 0.7):
            config = SupportConfig(0.5, floor, weight)
            tables = {}
            for name, (parts, kinds, cells) in measured.items():
                values = combine(parts, config)
                values = np.array([values[i, j] for i, j in cells])
                tables[name] = {k: values[[kind == k for kind in kinds]] for k in KINDS}
            best = max(
                (np.mean([balanced_accuracy(t, th) for t in tables.values()]), float(th))
                for th in np.arange(0.3, 0.7, 0.025)
            )
            cols = " | ".join(
                f"{balanced_accuracy(t, best[1]):.3f} | {(t['wrong_answer'] >= best[1]).mean():.2f}"
                for t in tables.values()
            )
            print(f"| {floor:.2f} | {weight:.1f} | {best[1]:.3f} | {cols} | {best[0]:.3f} |")


if __name__ == "__main__":
    main()
