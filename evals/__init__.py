"""Offline evaluation: retrieval and answer-quality metrics, runs, reports."""
