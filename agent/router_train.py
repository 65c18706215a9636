"""Train the router's classifier, save it atomically, and score any router on a labelled split.

The model (agent/router.py, `build_net`): the bundled MiniLM encoder, fine-tuned and mean-pooled,
beside the frozen multilingual embedder's vector (bundled:e5), each batch-normalized, into one
linear head for intent and one for domain. MiniLM's English WordPiece vocabulary maps most
Chinese characters to [UNK], so Chinese messages are classified from the e5 vector alone
(`encoder_gate`). In 5-fold cross-validation over the 400 labelled lines this beat e5 alone
(intent 0.910 vs 0.907, domain 0.922 vs 0.890) and the prototype router (0.890, 0.887).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from agent.router import (
    FEATURES,
    FORMAT,
    Router,
    TrainedRouter,
    build_net,
    embed_queries,
    encoder_gate,
    load_examples,
    net_logits,
)
from agent.types import INTENTS
from retrieval.atomic import atomic_write_bytes, atomic_write_text, fsync_dir
from retrieval.protocols import Embedder
from retrieval.types import DOMAINS, LANGS

BASE_ENCODER = "bundled:minilm"


@dataclass(frozen=True)
class TaskScores:
    """Accuracy, macro-F1 and a confusion matrix (rows gold, columns predicted, order `labels`)."""

    n: int
    accuracy: float
    macro_f1: float
    labels: list[str]
    confusion: list[list[int]]


@dataclass(frozen=True)
class RouterMetrics:
    """Scores of one router on one split; `intent`/`domain` are keyed "all", "en", "zh"."""

    method: str
    split: str
    intent: dict[str, TaskScores]
    domain: dict[str, TaskScores]
    majority: dict[str, float]  # accuracy of always answering the train split's commonest label


def macro_f1(gold: Sequence[str], pred: Sequence[str]) -> float:
    """Unweighted mean of per-label F1 over the labels that occur in `gold` or `pred`.

    >>> macro_f1(["a", "a", "b"], ["a", "b", "b"])
    0.6666666666666666
    """
    from sklearn.metrics import f1_score

    if len(gold) != len(pred) or not gold:
        raise ValueError(f"need equal, non-zero numbers of labels; got {len(gold)}, {len(pred)}")
    labels = sorted(set(gold) | set(pred))
    return float(f1_score(gold, pred, labels=labels, average="macro", zero_division=0))


def task_scores(gold: Sequence[str], pred: Sequence[str], labels: Sequence[str]) -> TaskScores:
    """Scores of one task; `labels` fixes the confusion matrix's order."""
    index = {label: i for i, label in enumerate(labels)}
    confusion = [[0] * len(labels) for _ in labels]
    for g, p in zip(gold, pred, strict=True):
        confusion[index[g]][index[p]] += 1
    correct = sum(g == p for g, p in zip(gold, pred, strict=True))
    return TaskScores(len(gold), correct / len(gold), macro_f1(gold, pred), list(labels), confusion)


def evaluate_router(router: Router, data: Path, split: str = "test") -> RouterMetrics:
    """Route each message of `split` in `data`; score intent and domain, overall and by language."""
    examples = load_examples(data, split=split)
    if not examples:
        raise ValueError(f"{data} has no lines in split {split!r}; nothing to evaluate")
    routes = [router.route(e.text) for e in examples]
    scores: dict[str, dict[str, TaskScores]] = {"intent": {}, "domain": {}}
    for task, labels in (("intent", INTENTS), ("domain", DOMAINS)):
        for group in ("all", *LANGS):
            rows = [
                (e, r) for e, r in zip(examples, routes, strict=True) if group in ("all", e.lang)
            ]
            if rows:
                gold = [getattr(e, task) for e, _ in rows]
                pred = [getattr(r, task) for _, r in rows]
                scores[task][group] = task_scores(gold, pred, labels)
    train = load_examples(data, split="train") or examples
    majority = {}
    for task in ("intent", "domain"):
        counts: dict[str, int] = {}
        for e in train:
            counts[getattr(e, task)] = counts.get(getattr(e, task), 0) + 1
        top = max(counts, key=lambda label: counts[label])
        majority[task] = sum(getattr(e, task) == top for e in examples) / len(examples)
    method = str(getattr(router, "method", type(router).__name__))
    return RouterMetrics(method, split, scores["intent"], scores["domain"], majority)


def format_metrics(m: RouterMetrics) -> str:
    """A Markdown table of accuracy and macro-F1 per task and language."""
    lines = [
        f"Router `{m.method}` on split `{m.split}`",
        "",
        "| task | lang | n | accuracy | macro-F1 | majority baseline |",
        "|---|---|---|---|---|---|",
    ]
    for task, by_lang in (("intent", m.intent), ("domain", m.domain)):
        for group, s in by_lang.items():
            base = f"{m.majority[task]:.3f}" if group == "all" else ""
            lines.append(
                f"| {task} | {group} | {s.n} | {s.accuracy:.3f} | {s.macro_f1:.3f} | {base} |"
            )
    for task, by_lang in (("intent", m.intent), ("domain", m.domain)):
        s = by_lang["all"]
        lines += ["", f"Confusion ({task}, rows gold, columns predicted):", ""]
        lines.append("| gold \\ predicted | " + " | ".join(s.labels) + " |")
        lines.append("|---" * (len(s.labels) + 1) + "|")
        for label, row in zip(s.labels, s.confusion, strict=True):
            lines.append(f"| {label} | " + " | ".join(map(str, row)) + " |")
    return "\n".join(lines)


def train_router(
    data: Path,
    out: Path,
    *,
    epochs: int | None = None,
    seed: int = 0,
    progress: bool = True,
    embedder: Embedder | None = None,
    features: str = "minilm+embedder",
    batch_size: int = 16,
    lr: float = 5e-5,
    head_lr: float = 2e-3,
    max_len: int = 64,
) -> RouterMetrics:
    """Fine-tune on the train split of `data`, save to the folder `out`, score on the test split.

    `embedder` (default bundled:e5, the multilingual one) supplies the frozen vector beside
    MiniLM; `features` picks either part alone instead. `epochs` defaults to what the feature set
    needs (FEATURES). The heads start from nothing, hence their own, larger learning rate.
    """
    import torch
    import torch.nn.functional as F
    from safetensors.torch import save
    from transformers import AutoModel, AutoTokenizer

    if features not in FEATURES:
        raise ValueError(f"features must be one of {', '.join(FEATURES)}; got {features!r}")
    epochs = FEATURES[features] if epochs is None else epochs
    if epochs < 1 or batch_size < 2:
        raise ValueError("epochs must be at least 1 and batch_size at least 2 (batch norm)")
    train = load_examples(data, split="train")
    if not train:
        raise ValueError(f'{data} has no train lines; label some with "split": "train"')
    if embedder is None and "embedder" in features:
        from retrieval.embedders import load_embedder

        embedder = load_embedder("bundled:e5")
    torch.manual_seed(seed)
    encoder = tokenizer = None
    if "minilm" in features:
        base = _base_encoder_path()
        tokenizer = AutoTokenizer.from_pretrained(base)
        # The pooler stays though unused: dropping it makes transformers print a load report.
        encoder = AutoModel.from_pretrained(base)
    feats = None
    if embedder is not None and "embedder" in features:
        feats = torch.from_numpy(embed_queries(embedder, [e.text for e in train]))
    net = build_net(encoder, 0 if feats is None else feats.shape[1], len(INTENTS), len(DOMAINS))
    heads = [p for name, p in net.named_parameters() if not name.startswith("encoder.")]
    groups: list[dict[str, Any]] = [{"params": heads, "lr": head_lr}]
    if encoder is not None:
        groups.append({"params": list(net["encoder"].parameters()), "lr": lr})
    optimizer = torch.optim.AdamW(groups, weight_decay=0.01)
    y_intent = torch.tensor([INTENTS.index(e.intent) for e in train])
    y_domain = torch.tensor([DOMAINS.index(e.domain) for e in train])
    order_rng = torch.Generator().manual_seed(seed)
    started = time.perf_counter()
    net.train()
    for epoch in range(epochs):
        total = 0.0
        for idx in torch.randperm(len(train), generator=order_rng).split(batch_size):
            if len(idx) < 2:  # batch norm cannot normalize a batch of one; the row waits
                continue
            texts = [train[i].text for i in idx.tolist()]
            tokens = None
            if tokenizer is not None:
                tokens = tokenizer(
                    texts, padding=True, truncation=True, max_length=max_len, return_tensors="pt"
                )
            gate = encoder_gate(texts, features)
            if gate is not None:
                # Silence MiniLM on random English rows too, so the embedder half of each head
                # must carry English alone and, being shared, carries Chinese better.
                keep = torch.bernoulli(torch.full_like(gate, 0.5), generator=order_rng)
                gate = gate * keep * 2.0
            intent, domain = net_logits(net, tokens, None if feats is None else feats[idx], gate)
            loss = F.cross_entropy(intent, y_intent[idx]) + F.cross_entropy(domain, y_domain[idx])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += loss.item() * len(idx)
        if progress:
            print(
                f"router: epoch {epoch + 1}/{epochs} loss {total / len(train):.3f} "
                f"({time.perf_counter() - started:.0f} s)",
                file=sys.stderr,
            )
    meta = {
        "format": FORMAT,
        "features": features,
        "base_encoder": BASE_ENCODER if encoder is not None else None,
        "embedder": embedder.name if feats is not None and embedder else None,
        "embedder_dim": int(feats.shape[1]) if feats is not None else 0,
        "max_len": max_len,
        "data": str(data),
        "data_sha256": hashlib.sha256(Path(data).read_bytes()).hexdigest(),
        "train_examples": len(train),
        "hyperparameters": {
            "epochs": epochs,
            "seed": seed,
            "batch_size": batch_size,
            "lr": lr,
            "head_lr": head_lr,
        },
        "train_seconds": round(time.perf_counter() - started, 1),
        "labels": {"intent": list(INTENTS), "domain": list(DOMAINS)},
    }
    net.eval()
    router = TrainedRouter(net, tokenizer, embedder if feats is not None else None, meta)
    has_test = bool(load_examples(data, split="test"))
    metrics = evaluate_router(router, data, "test" if has_test else "train")
    meta["metrics"] = asdict(metrics)
    weights = save({k: v.contiguous() for k, v in net.state_dict().items()})
    _save_folder(Path(out), weights, meta, tokenizer, encoder)
    return metrics


def _base_encoder_path() -> Path:
    from retrieval.models import resolve_model

    return resolve_model(BASE_ENCODER).path


def _save_folder(
    out: Path, weights: bytes, meta: dict[str, Any], tokenizer: Any, encoder: Any
) -> None:
    """Write the folder beside `out` and rename it into place, so a reader never sees half of it.

    Replacing an existing folder takes two renames (old aside, new in); a crash between them leaves
    the old one under a ".old-" name and `out` missing, which load_router treats as untrained.
    """
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        atomic_write_bytes(tmp / "model.safetensors", weights)
        labels = json.dumps(meta["labels"], indent=2)
        atomic_write_text(tmp / "labels.json", labels + "\n")
        rest = {k: v for k, v in meta.items() if k != "labels"}
        rest["weights_sha256"] = hashlib.sha256(weights).hexdigest()
        atomic_write_text(tmp / "meta.json", json.dumps(rest, indent=2, ensure_ascii=False) + "\n")
        if encoder is not None:
            encoder.config.save_pretrained(tmp / "encoder")
            tokenizer.save_pretrained(tmp / "encoder")
        old = None
        if out.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
            os.rename(out, old / out.name)
        os.rename(tmp, out)
        fsync_dir(out.parent)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
