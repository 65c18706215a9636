"""Rebuild the demo knowledge bases and their cases from the normalized evaluation sets.

Kept beside the data so anyone can see exactly what was taken; it is not used at run time.
Usage: python retrieval/demo_corpus/make_demo_corpus.py /path/to/evalsets
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
STARD_DOCS = 80
POLICYQA_SITES = ("ticketmaster.com", "yahoo.com", "sci-news.com")
PUBMEDQA_DOCS = 80
CMB_CLIN_CASES = 20
XQUAD_ARTICLES = 8  # 5 paragraphs each, in both languages


def read(path: Path) -> list[dict]:
    with path.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def spread(items: list[dict], n: int) -> list[dict]:
    """n items evenly spaced through `items`, so the cases are not all about one topic."""
    step = max(1, len(items) // n)
    return items[::step][:n]


def stard(root: Path) -> tuple[list[dict], list[dict]]:
    corpus = {d["id"]: d for d in read(root / "stard/corpus.jsonl")}
    chosen: set[str] = set()
    cases = []
    # Whole cases in file order (they come in topical runs), until the article budget is used.
    for case in read(root / "stard/cases.jsonl"):
        gold = set(case["gold_doc_ids"])
        if len(chosen | gold) > STARD_DOCS:
            break
        chosen |= gold
        cases.append(case)
    docs = [d for d in corpus.values() if d["id"] in chosen]
    return docs, spread(cases, 7)


def policyqa(root: Path) -> tuple[list[dict], list[dict]]:
    docs = [d for d in read(root / "policyqa/corpus.jsonl") if d["group"] in POLICYQA_SITES]
    cases = read(root / "policyqa/cases.jsonl")
    picked = []
    for site, n in zip(POLICYQA_SITES, (3, 2, 2), strict=True):
        picked += spread([c for c in cases if c["group"] == site], n)
    return docs, picked


def pubmedqa(root: Path) -> tuple[list[dict], list[dict]]:
    docs = read(root / "pubmedqa/corpus.jsonl")[:PUBMEDQA_DOCS]
    ids = {d["id"] for d in docs}
    cases = [c for c in read(root / "pubmedqa/cases.jsonl") if set(c["gold_doc_ids"]) <= ids]
    return docs, spread(cases, 7)


def cmb_clin(root: Path) -> tuple[list[dict], list[dict]]:
    docs = read(root / "cmb-clin/corpus.jsonl")[:CMB_CLIN_CASES]
    ids = {d["id"] for d in docs}
    first_question: dict[str, dict] = {}
    for case in read(root / "cmb-clin/cases.jsonl"):
        if case["group"] in ids:
            first_question.setdefault(case["group"], case)
    return docs, spread(list(first_question.values()), 6)


def xquad(root: Path, lang: str, case_ids: list[str] | None) -> tuple[list[dict], list[dict]]:
    """Both languages share doc and case ids upstream; tag them with the language to keep both."""
    corpus = read(root / f"xquad-{lang}/corpus.jsonl")
    # Ids are xq-<article>-<paragraph>; article numbers have gaps (odd ones are held out).
    articles = list(dict.fromkeys(d["id"].split("-")[1] for d in corpus))[:XQUAD_ARTICLES]
    docs = [
        {**d, "id": d["id"].replace("xq-", f"xq-{lang}-", 1)}
        for d in corpus
        if d["id"].split("-")[1] in articles
    ]
    ids = {d["id"] for d in docs}
    cases = []
    for c in read(root / f"xquad-{lang}/cases.jsonl"):
        gold = [g.replace("xq-", f"xq-{lang}-", 1) for g in c["gold_doc_ids"]]
        if set(gold) <= ids:
            cases.append({**c, "id": f"{c['id']}-{lang}", "gold_doc_ids": gold})
    if case_ids is None:
        # One question per article, the same questions in both languages (parallel facts).
        first: dict[str, dict] = {}
        for c in cases:
            first.setdefault(c["gold_doc_ids"][0].split("-")[2], c)
        return docs, list(first.values())[:7]
    wanted = {f"{i}-{lang}" for i in case_ids}
    return docs, [c for c in cases if c["id"] in wanted]


def write(path: Path, rows: list[dict]) -> None:
    with path.open("w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")


def main(root: Path) -> None:
    legal_zh, legal_zh_cases = stard(root)
    legal_en, legal_en_cases = policyqa(root)
    med_en, med_en_cases = pubmedqa(root)
    med_zh, med_zh_cases = cmb_clin(root)
    edu_en, edu_en_cases = xquad(root, "en", None)
    edu_zh, edu_zh_cases = xquad(root, "zh", [c["id"].removesuffix("-en") for c in edu_en_cases])
    write(HERE / "legal.jsonl", legal_zh + legal_en)
    write(HERE / "medical.jsonl", med_en + med_zh)
    write(HERE / "education.jsonl", edu_en + edu_zh)
    cases = [
        *({**c, "kb": "legal"} for c in legal_zh_cases + legal_en_cases),
        *({**c, "kb": "medical"} for c in med_en_cases + med_zh_cases),
        *({**c, "kb": "education"} for c in edu_en_cases + edu_zh_cases),
    ]
    write(HERE / "cases.jsonl", cases)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python make_demo_corpus.py EVALSETS_DIR (the normalized evaluation sets)")
    main(Path(sys.argv[1]))
