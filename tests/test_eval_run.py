"""Fast checks of the run machinery: case selection, group corpora, the run store's resume guard,
and the GPU batching path's control flow with a counting stand-in LM (no GPU here)."""

import json
import threading

import pytest

from agent.protocols import GenerationStats
from evals.batching import BatchingLM
from evals.run import group_corpus, spread
from evals.runstore import RunStore
from evals.sets import load_set

SMOKE = "evals/smoke"


def test_spread_is_even_and_deterministic():
    assert spread(list(range(10)), 4) == [0, 2, 5, 7]
    assert spread(list(range(3)), 10) == [0, 1, 2]
    with pytest.raises(ValueError, match="--limit"):
        spread(list(range(3)), 0)


def test_group_corpus_keeps_only_the_cases_groups(tmp_path):
    evalset = load_set(SMOKE)
    refuse = [c for c in evalset.cases if c.answer_type == "refuse"]
    subset = group_corpus(evalset, refuse, tmp_path)
    docs = [json.loads(line) for line in subset.corpus.open(encoding="utf-8")]
    assert {d["group"] for d in docs} == {"sm-neg-en", "sm-neg-zh"} and len(docs) == 4
    assert subset.content_hash() != evalset.content_hash()
    # a case without a group searches the whole corpus: nothing is left out
    assert group_corpus(evalset, evalset.cases, tmp_path) is evalset


def test_resume_refuses_a_different_run(tmp_path):
    RunStore(tmp_path).check_meta({"set": "a", "config": {"k": 5}})
    RunStore(tmp_path).check_meta({"set": "a", "config": {"k": 5}})  # same: resumes
    with pytest.raises(ValueError, match=r"different \['config'\].*another --out"):
        RunStore(tmp_path).check_meta({"set": "a", "config": {"k": 3}})


class CountingLM:
    name = "counting"

    def __init__(self):
        self.batches = []
        self.release = threading.Event()

    def generate_batch(self, conversations, *, max_new_tokens=512):
        self.release.wait(5)
        self.batches.append(len(conversations))
        return [f"answer to {c[-1]['content']}" for c in conversations]

    def count_tokens(self, text):
        return len(text.split())


def test_batching_lm_answers_concurrent_streams_in_one_batch():
    inner = CountingLM()
    lm = BatchingLM(inner, batch_size=4, max_wait_s=0.5)
    answers, stats = {}, {}

    def ask(i):
        s: list[GenerationStats] = []
        answers[i] = "".join(lm.stream([{"role": "user", "content": f"q{i}"}], stats=s))
        stats[i] = s[0]

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    inner.release.set()
    for t in threads:
        t.join(10)
    assert answers == {i: f"answer to q{i}" for i in range(4)}
    assert inner.batches == [4]
    assert stats[0].new_tokens == 3 and stats[0].stopped == "eos"
