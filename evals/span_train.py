"""Train the short-answer reader (agent/span.py) and measure it on held-out cases.

    python -m evals.span_train [--evalsets ../shared/evalsets] [--epochs 3] [--out F]

Cases: a question, the sentence of its gold passage that holds a gold answer, and where in the
sentence the answer is. XQuAD en / zh (and each question over the other language's sentence),
PolicyQA (at most `--policyqa` training cases: its spans are long clauses), RGB-zh's answerable
items and our newcomer dev set train, with sentences that hold no answer (`negatives`: for each
case the sentence of its passage most like the question without a gold answer, and for RGB's
negative-only items and our unanswerable questions the one most like it), whose target is the
<s> position; XQuAD and PolicyQA are split by document as
evals/evidence_cases.py splits them (every third document held out), RGB by item, and
evals/newcomer-holdout is held out whole. The model: multilingual-e5-small
rebuilt in torch (retrieval/e5_torch.py), LoRA adapters (peft) on every layer, a linear start /
end head over <s> and the sentence's tokens, cross-entropy on the gold start and end. Printed per
held-out set and per probability cut: the share of cases kept, token F1 and "contains" of the
span against the gold answers, and the share read as "no answer". ~30 min on 2 CPU cores.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import random
import time
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from agent.span import SPAN_PATH, SpanReader, batch, encode
from evals.answer_metrics import answer_contains, token_f1
from evals.sets import load_set
from retrieval.lexical import content_words
from retrieval.sentences import split_sentences

LORA_RANK = 16
CUTS = (0.0, 0.2, 0.3, 0.4, 0.5, 0.6)


@dataclass(frozen=True)
class SpanCase:
    id: str
    question: str
    sentence: str
    start: int  # character span of the answer in `sentence`; -1, -1: it holds no answer
    end: int
    answers: tuple[str, ...]
    lang: str
    source: str
    test: bool


def _locate(sentence: str, answer: str) -> tuple[int, int] | None:
    answer = answer.strip()
    i = sentence.lower().find(answer.lower()) if answer else -1
    return (i, i + len(answer)) if i >= 0 else None


def cases(folder: Path, test_of: Any, parts: bool = False) -> list[SpanCase]:
    """Every span case of the set whose gold passage has a sentence holding a gold answer;
    `test_of(case, doc_index)` says whether it is held out. `parts`: the answers are parts that
    all belong in the answer (RGB), so only single-part cases are read."""
    with (folder / "corpus.jsonl").open(encoding="utf-8") as f:
        corpus = {d["id"]: d for d in map(json.loads, f)}
    index = {doc_id: i for i, doc_id in enumerate(corpus)}
    out = []
    for n, case in enumerate(load_set(folder).cases):
        if case.answer_type != "span" or not case.gold_doc_ids or (parts and len(case.answers) > 1):
            continue
        question = case.reference if case.history and case.reference else case.question
        for doc_id in case.gold_doc_ids:
            found = _first(corpus[doc_id]["text"], case.answers)
            if found:
                sentence, (a, b) = found
                held = test_of(n, index[doc_id])
                out.append(
                    SpanCase(case.id, question, sentence, a, b, tuple(case.answers),
                             case.lang, folder.name, held)
                )  # fmt: skip
                break
    return out


def crossed(en: Sequence[SpanCase], zh: Sequence[SpanCase]) -> list[SpanCase]:
    """XQuAD en and zh are one set in two languages: each question asked over the other
    language's sentence too (a user may ask in English about Chinese documents)."""
    by_id = {c.id: c for c in zh}
    out = []
    for e in en:
        z = by_id.get(e.id)
        if z is not None:
            out.append(dataclasses.replace(z, question=e.question, source="xquad-en>zh"))
            out.append(dataclasses.replace(e, question=z.question, source="xquad-zh>en"))
    return out


def _overlap(question: str, sentence: str) -> float:
    """The share of the question's content words the sentence has: the sentences a reader is
    shown without the answer are the ones that look like it (RGB's negatives: same event, other
    year)."""
    words = set(content_words(question))
    return len(words & set(content_words(sentence))) / max(1, len(words))


def _closest(question: str, sentences: Sequence[str], answers: Sequence[str], n: int) -> list[str]:
    """The `n` sentences most like `question` that hold none of `answers`."""
    wanted = [a.lower() for a in answers if a.strip()]
    without = [s for s in sentences if len(s) > 8 and not any(a in s.lower() for a in wanted)]
    return sorted(without, key=lambda s: -_overlap(question, s))[:n]


def negatives(
    folder: Path, test_of: Any, per_case: int = 1, refuse: bool = False
) -> list[SpanCase]:
    """Sentences without the answer, the reader to learn to say "none" (a span at position 0):
    for each span case, the `per_case` sentences of its group's documents (XQuAD: its gold
    passage) most like the question that hold no gold answer; with `refuse`, a refuse case's
    own group (RGB's negatives only, our unanswerable questions)."""
    with (folder / "corpus.jsonl").open(encoding="utf-8") as f:
        corpus = {d["id"]: d for d in map(json.loads, f)}
    index = {doc_id: i for i, doc_id in enumerate(corpus)}
    by_group: dict[str, list[str]] = {}
    for d in corpus.values():
        by_group.setdefault(d["group"], []).append(d["id"])
    out = []
    for n, case in enumerate(load_set(folder).cases):
        if case.answer_type == "span" and case.gold_doc_ids:
            docs = case.gold_doc_ids if case.group == "" else by_group[case.group]
            where = index[case.gold_doc_ids[0]]
        elif refuse and case.answer_type == "refuse":
            docs, where = by_group.get(case.group) or list(corpus), -1
        else:
            continue
        question = case.reference if case.history and case.reference else case.question
        sentences = [s for d in docs for s in split_sentences(corpus[d]["text"], unwrap=True)]
        held = test_of(n, where)
        for sentence in _closest(question, sentences, case.answers, per_case):
            out.append(
                SpanCase(case.id, question, sentence, -1, -1, tuple(case.answers), case.lang,
                         f"{folder.name}:none", held)
            )  # fmt: skip
    return out


def _first(text: str, answers: Sequence[str]) -> tuple[str, tuple[int, int]] | None:
    for sentence in split_sentences(text, unwrap=True):
        for answer in answers:
            at = _locate(sentence, answer)
            if at:
                return sentence, at
    return None


def _labels(tokenizer: Any, case: SpanCase) -> tuple[list[int], int, int, int, int] | None:
    """(ids, first sentence token, sentence tokens, gold start token, gold end token)."""
    row, first, offsets, text = encode(tokenizer, case.question, case.sentence)
    if case.start < 0:
        return row, first, len(offsets), 0, 0  # no answer: the <s> position
    if unicodedata.normalize("NFKC", text) != unicodedata.normalize("NFKC", case.sentence):
        # the tokenizer's normalisation moved characters: find the answer again in its text
        at = _locate(text, case.sentence[case.start : case.end])
        if at is None:
            return None
        a, b = at
    else:
        a, b = case.start, case.end
    start = next((k for k, (_, e) in enumerate(offsets) if e > a), None)
    end = max((k for k, (s, _) in enumerate(offsets) if s < b), default=None)
    if start is None or end is None or end < start:
        return None
    return row, first, len(offsets), first + start, first + end


def train(train_cases: Sequence[SpanCase], epochs: int, seed: int = 0) -> SpanReader:
    import torch
    from peft import LoraConfig, get_peft_model

    from retrieval import e5_torch

    torch.manual_seed(seed)
    rng = random.Random(seed)
    base, tokenizer = e5_torch.load()
    lora = LoraConfig(
        r=LORA_RANK, lora_alpha=2 * LORA_RANK, lora_dropout=0.1,
        target_modules=["query", "key", "value", "dense"],
    )  # fmt: skip
    model = get_peft_model(base, lora)
    head = torch.nn.Linear(base.config.hidden_size, 2)
    params = [p for p in model.parameters() if p.requires_grad] + list(head.parameters())
    rows = [r for r in (_labels(tokenizer, c) for c in train_cases) if r is not None]
    print(f"{len(rows)} training cases of {len(train_cases)}", flush=True)
    opt = torch.optim.AdamW(params, lr=5e-4, weight_decay=0.01)
    batch = 16
    steps = epochs * (len(rows) // batch)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / 30) * max(0.05, 1 - s / steps)
    )
    started, step = time.perf_counter(), 0
    for _ in range(epochs):
        rng.shuffle(rows)
        model.train()
        for b in range(len(rows) // batch):
            loss = _loss(model, head, tokenizer, rows[b * batch : (b + 1) * batch])
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            sched.step()
            opt.zero_grad()
            step += 1
            if step % 25 == 0:
                took = time.perf_counter() - started
                print(f"step {step}/{steps} loss {loss.item():.3f} {took:.0f} s", flush=True)
    model.eval()
    return SpanReader(model, head.eval(), tokenizer)


def _loss(model: Any, head: Any, tokenizer: Any, rows: Sequence[tuple]) -> Any:
    import torch

    ids, mask = batch([r[0] for r in rows], tokenizer.pad)
    logits = head(model(input_ids=ids, attention_mask=mask).last_hidden_state)
    outside = torch.full(logits.shape[:2], float("-inf"))
    for i, (_, first, n, _, _) in enumerate(rows):
        outside[i, first : first + n] = 0  # only the sentence's tokens can start or end it,
        outside[i, 0] = 0  # or <s>, which stands for "no answer here"
    starts, ends = logits[..., 0] + outside, logits[..., 1] + outside
    gold_s = torch.tensor([r[3] for r in rows])
    gold_e = torch.tensor([r[4] for r in rows])
    ce = torch.nn.functional.cross_entropy
    return (ce(starts, gold_s) + ce(ends, gold_e)) / 2


def report(reader: SpanReader, held_out: Sequence[SpanCase]) -> dict[str, Any]:
    """Per source and cut: kept share, F1 and contains of the kept spans (gold sentence given);
    for sentences without the answer (":none" sources) "kept" is the share wrongly answered. And
    per source the share the reader says holds no answer (P(none) ≥ 0.5)."""
    rows: dict[str, list[tuple[float, float, float, float]]] = {}
    for c in held_out:
        got = reader.read(c.question, c.sentence)
        text, p, none = (got.text, got.score, got.none) if got else ("", 0.0, 1.0)
        f1 = token_f1(text, c.answers, c.lang) if c.start >= 0 else 0.0
        hit = answer_contains(text, c.answers, c.lang) if c.start >= 0 else 0.0
        rows.setdefault(c.source, []).append((f1, hit, p, none))
    out: dict[str, Any] = {}
    for source, scored in rows.items():
        table = np.array(scored)  # columns: F1, contains, probability, P(none)
        f1s, contains = table[:, 0], table[:, 1]
        out[source] = {"cases": len(scored), "none": round(float((table[:, 3] >= 0.5).mean()), 3)}
        for cut in CUTS:
            kept = table[:, 2] >= cut
            out[source][f"p>={cut}"] = {
                "kept": round(float(kept.mean()), 3),
                "f1": round(float(f1s[kept].mean()), 3) if kept.any() else None,
                "contains": round(float(contains[kept].mean()), 3) if kept.any() else None,
            }
    return out


def save(reader: SpanReader, path: Path) -> None:
    """The LoRA pairs (float16) under the adapted modules' BertModel names, the head, the scale."""
    from safetensors.numpy import save_file

    weights: dict[str, np.ndarray] = {}
    for name, tensor in reader.model.state_dict().items():
        if ".lora_" not in name:
            continue
        module, kind = name.split(".lora_")
        module = module.removeprefix("base_model.model.")
        weights[f"{module}.lora_{kind[0]}"] = tensor.numpy().astype(np.float16)
    weights["head.weight"] = reader.head.weight.detach().numpy().astype(np.float16)
    weights["head.bias"] = reader.head.bias.detach().numpy().astype(np.float16)
    weights["lora_scale"] = np.array([2.0], np.float32)  # lora_alpha / r
    save_file(weights, str(path))


def main(argv: Sequence[str] | None = None) -> None:
    import torch

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--evalsets", type=Path, default=Path("../shared/evalsets"))
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--policyqa", type=int, default=600, help="PolicyQA training cases at most")
    ap.add_argument("--out", type=Path, default=SPAN_PATH)
    args = ap.parse_args(argv)
    torch.set_num_threads(2)
    by_doc = lambda n, doc: doc % 3 == 0  # noqa: E731 - evals/evidence_cases.py's split
    by_item = lambda n, doc: n // 2 % 3 == 0  # noqa: E731 - RGB: a span case, then its refusal
    ours = Path(__file__).parent
    en = cases(args.evalsets / "xquad-en", by_doc)
    zh = cases(args.evalsets / "xquad-zh", by_doc)
    everything = [
        *en,
        *zh,
        *crossed(en, zh),
        *cases(args.evalsets / "rgb-zh", by_item, parts=True),
        *cases(ours / "newcomer", lambda n, doc: False),
        *cases(ours / "newcomer-holdout", lambda n, doc: True),
        *negatives(args.evalsets / "xquad-en", by_doc),
        *negatives(args.evalsets / "xquad-zh", by_doc),
        *negatives(args.evalsets / "rgb-zh", by_item, refuse=True),
        *negatives(ours / "newcomer", lambda n, doc: False, refuse=True),
        *negatives(ours / "newcomer-holdout", lambda n, doc: True, refuse=True),
    ]
    policy = cases(args.evalsets / "policyqa", by_doc)
    random.Random(0).shuffle(policy)
    train_policy = [c for c in policy if not c.test][: args.policyqa]
    held = [c for c in everything + policy if c.test]
    reader = train([c for c in everything if not c.test] + train_policy, args.epochs)
    save(reader, args.out)
    print(json.dumps(report(SpanReader.load(args.out), held), indent=1))


if __name__ == "__main__":
    main()
