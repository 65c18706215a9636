"""Speed up a float32 causal LM on CPU without changing what it computes: pre-packed linear weights.

PyTorch's CPU linear reads each weight in its stored (out, in) layout on every call; for the one
to a few dozen rows a decoding step feeds it, that is mostly memory traffic in a poor order.
oneDNN can reorder a weight once into its blocked layout; the same products then run about 1.7x
faster for one row and 2x faster for 16 (benchmarks/bench_decode.py measures the whole effect).
The arithmetic is float32 either way; only the summation order inside a dot product may differ,
which the benchmark's identical-output check covers.
"""

from __future__ import annotations

import logging

import torch

log = logging.getLogger(__name__)

# oneDNN picks its blocking from the expected number of rows; 32 served 1 to 16 rows best here.
_ROWS_HINT = 32


class PackedLinear(torch.nn.Module):
    """A bias-optional nn.Linear whose weight lives in oneDNN's blocked layout."""

    def __init__(self, linear: torch.nn.Linear) -> None:
        super().__init__()
        self.in_features, self.out_features = linear.in_features, linear.out_features
        self.packed = torch.ops.mkldnn._reorder_linear_weight(linear.weight.detach(), _ROWS_HINT)
        self.bias = linear.bias

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.ops.mkldnn._linear_pointwise(x, self.packed, self.bias, "none", [], "")


def pack_linears(model: torch.nn.Module) -> int:
    """Replace the model's float32 CPU nn.Linear layers by PackedLinear; return how many.

    Returns 0 and leaves the model as it was where this PyTorch build has no oneDNN or the packed
    product disagrees with the plain one on a probe (the speedup is optional, correctness is not).
    """
    linears = [
        (parent, name, child)
        for parent in model.modules()
        for name, child in parent.named_children()
        if isinstance(child, torch.nn.Linear)
        and child.weight.dtype == torch.float32
        and child.weight.device.type == "cpu"
    ]
    if not linears or not _packing_works(linears[0][2]):
        return 0
    with torch.no_grad():
        for parent, name, child in linears:
            setattr(parent, name, PackedLinear(child))
    return len(linears)


def _packing_works(linear: torch.nn.Linear) -> bool:
    if not torch.backends.mkldnn.is_available():
        return False
    try:
        with torch.no_grad():
            probe = torch.randn(
                3, 5, linear.in_features, generator=torch.Generator().manual_seed(0)
            )
            got = PackedLinear(linear)(probe)
            want = torch.nn.functional.linear(probe, linear.weight, linear.bias)
    except (RuntimeError, AttributeError) as e:  # op missing or unsupported in this build
        log.info("oneDNN weight packing unavailable (%s); using plain linear layers", e)
        return False
    return bool(torch.allclose(got, want, rtol=1e-4, atol=1e-5))
