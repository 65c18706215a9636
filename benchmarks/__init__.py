"""Benchmarks measured against named baselines in the same run."""
