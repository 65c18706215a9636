"""Can the bundled models decide PubMedQA's yes / no? A probe, 5-fold on the dev cases.

    python -m evals.yesno_probe [--evalsets ../shared/evalsets] [--lm-cases 150]

Three deciders over each abstract's last sentences (its results): logistic regression over
frozen e5 question and passage vectors, over negation / significance cue counts, and the bundled
SmolLM2's log-probability of "yes" against "no". Printed: each one's accuracy next to always
"yes". None beat it by enough to ship (docs/EVALS.md), so answers quote the evidence instead.
"""

from __future__ import annotations

import argparse
import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from evals.sets import load_set
from evals.support_calibration import read_corpus
from retrieval.sentences import split_sentences

_NEG = re.compile(
    r"\b(?:no|not|nor|without|neither|failed|not significant|unclear|insufficient)\b",
    re.I,
)
_SIG = re.compile(
    r"\b(?:significant(?:ly)?|improv\w*|effective|associated|increase\w*|reduc\w*|higher|lower)\b",
    re.I,
)


def _cases(folder: Path) -> list[tuple[str, str, str]]:
    """(question, the abstract's last 4 sentences, gold label) per case."""
    corpus = read_corpus(folder / "corpus.jsonl")
    return [
        (
            c.question,
            " ".join(split_sentences(corpus[c.gold_doc_ids[0]][0])[-4:]),
            c.answers[0],
        )
        for c in load_set(folder).cases
    ]


def _lm_margin(cases: Sequence[tuple[str, str, str]]) -> np.ndarray:
    """log P(yes) − log P(no) of the bundled SmolLM2's first answer token."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from retrieval.embedders import default_cache_dir
    from retrieval.models import causal_lm_folder

    folder = causal_lm_folder("bundled:smollm2", default_cache_dir() / "models")
    tok = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder).eval()
    yes = [tok.encode(w, add_special_tokens=False)[0] for w in ("Yes", "yes", " Yes")]
    no = [tok.encode(w, add_special_tokens=False)[0] for w in ("No", "no", " No")]
    margins = []
    for question, tail, _ in cases:
        content = f"Passage: {tail}\n\nQuestion: {question}\nAnswer with yes or no."
        ids: Any = tok.apply_chat_template(
            [{"role": "user", "content": content}], add_generation_prompt=True,
            return_tensors="pt", return_dict=True,
        )  # fmt: skip
        with torch.no_grad():
            logp = torch.log_softmax(model(ids["input_ids"]).logits[0, -1].float(), -1)
        margins.append(float(torch.logsumexp(logp[yes], 0) - torch.logsumexp(logp[no], 0)))
    return np.asarray(margins)


def main(argv: Sequence[str] | None = None) -> None:
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_score

    from retrieval.embedders import load_embedder

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--evalsets", type=Path, default=Path("../shared/evalsets"))
    ap.add_argument("--lm-cases", type=int, default=150, help="cases for the SmolLM2 probe")
    args = ap.parse_args(argv)
    cases = _cases(args.evalsets / "pubmedqa")
    y = np.array([label for _, _, label in cases])
    e5 = load_embedder("bundled:e5")
    q = np.vstack([e5.embed_query(question) for question, _, _ in cases])
    s = e5.embed_documents([tail for _, tail, _ in cases])
    cues = np.array([[len(_NEG.findall(t)), len(_SIG.findall(t))] for _, t, _ in cases])
    folds = StratifiedKFold(5, shuffle=True, random_state=0)
    result = {"always yes": float((y == "yes").mean())}
    for name, x in (("e5 question + passage", np.hstack([q, s, q * s])), ("cue counts", cues)):
        model = LogisticRegression(C=0.1, max_iter=3000)
        result[name] = float(cross_val_score(model, x, y, cv=folds).mean())
    n = min(args.lm_cases, len(cases))
    margin = _lm_margin(cases[:n])
    # The cut is chosen on the same cases: an upper bound for this decider.
    result["SmolLM2 yes-vs-no, best cut"] = max(
        float((np.where(margin > cut, "yes", "no") == y[:n]).mean())
        for cut in np.percentile(margin, range(5, 100, 5))
    )
    print(json.dumps({k: round(v, 3) for k, v in result.items()}, indent=1))


if __name__ == "__main__":
    main()
