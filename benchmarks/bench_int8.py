"""Would an int8 MiniLM embed faster here? fp32 OpenVINO against NNCF's int8 variants, same run.

    pip install nncf   # not a citewise dependency: only this measurement needs it
    python -m benchmarks.bench_int8 [--passages 400] [--rounds 2]

The fp32 model is citewise's cached OpenVINO conversion of all-MiniLM-L6-v2. Variants: int8
weights (data-free `nncf.compress_weights`), the same with OpenVINO's dynamic quantization of
activations, and static int8 (`nncf.quantize`, calibrated on a quarter of the passages). Each is
timed embedding the same passages (longest first, batches of 16, all cores on one request), rounds
alternating; fidelity is the lowest cosine to the fp32 vectors. int8 pays off only where the CPU
has int8 dot-product instructions (AVX512-VNNI, AVX-VNNI, AMX); the table says which this CPU has.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.bench_embed import load_texts
from retrieval.embedders import default_cache_dir
from retrieval.models import resolve_model
from retrieval.ov_encoder import OpenVinoEncoder, _pool, convert_to_openvino, st_pipeline

Batch = tuple[np.ndarray, np.ndarray, np.ndarray]  # rows, input_ids, attention_mask


def batches(encoder: OpenVinoEncoder, texts: list[str], size: int) -> Iterator[Batch]:
    order = np.argsort([-len(t) for t in texts], kind="stable")
    for i in range(0, len(texts), size):
        rows = order[i : i + size]
        ids, mask = encoder.tokenizer.batch([texts[j] for j in rows])
        yield rows, ids, mask


def embed(compiled: Any, work: list[Batch], n: int, dim: int) -> tuple[float, np.ndarray]:
    request = compiled.create_infer_request()
    out = np.empty((n, dim), np.float32)
    start = time.perf_counter()
    for rows, ids, mask in work:
        hidden = request.infer({"input_ids": ids, "attention_mask": mask})[compiled.output(0)]
        out[rows] = _pool(hidden, mask, "mean")
    return time.perf_counter() - start, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--passages", type=int, default=400)
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    try:
        import nncf
    except ImportError:
        raise SystemExit("this benchmark needs NNCF: pip install nncf") from None
    import openvino as ov

    pipeline = st_pipeline(Path(resolve_model("bundled:minilm").path))
    assert pipeline is not None
    cache = default_cache_dir()
    encoder = OpenVinoEncoder(pipeline, cache, "f32")
    passages, _ = load_texts(args.passages, 0, encoder.count_tokens, pipeline.max_seq_length)
    xml = str(convert_to_openvino(pipeline, cache) / "model.xml")
    work = list(batches(encoder, passages, 16))
    core = ov.Core()
    config = {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_PRECISION_HINT": "f32"}
    weights8 = nncf.compress_weights(core.read_model(xml), mode=nncf.CompressWeightsMode.INT8_ASYM)
    calibration = [{"input_ids": i, "attention_mask": m} for _, i, m in work[::4]]
    static8 = nncf.quantize(
        core.read_model(xml),
        nncf.Dataset(calibration),
        model_type=nncf.ModelType.TRANSFORMER,
        subset_size=len(calibration),
    )
    variants = {
        "fp32 (citewise today)": core.compile_model(xml, "CPU", config),
        "int8 weights": core.compile_model(weights8, "CPU", config),
        "int8 weights + dynamic quantization": core.compile_model(
            weights8, "CPU", {**config, "DYNAMIC_QUANTIZATION_GROUP_SIZE": "32"}
        ),
        "static int8 (calibrated)": core.compile_model(static8, "CPU", config),
    }
    seconds: dict[str, list[float]] = {name: [] for name in variants}
    vectors: dict[str, np.ndarray] = {}
    for _ in range(args.rounds):
        for name, compiled in variants.items():
            took, vectors[name] = embed(compiled, work, len(passages), pipeline.dim)
            seconds[name].append(took)

    reference = vectors["fp32 (citewise today)"]
    base = statistics.median(seconds["fp32 (citewise today)"])
    flags = set(core.get_property("CPU", "OPTIMIZATION_CAPABILITIES"))
    print(
        f"\nall-MiniLM-L6-v2 on OpenVINO {ov.__version__}, {len(passages)} passages, median of "
        f"{args.rounds} alternating rounds; CPU capabilities: {', '.join(sorted(flags))}\n"
    )
    print("| variant | passages/s | × fp32 | min cosine to fp32 |")
    print("|---|---|---|---|")
    for name, times in seconds.items():
        rate = len(passages) / statistics.median(times)
        cosine = float((vectors[name] * reference).sum(axis=1).min())
        print(f"| {name} | {rate:.1f} | {base / statistics.median(times):.2f} | {cosine:.4f} |")


if __name__ == "__main__":
    main()
