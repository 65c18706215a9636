"""Dialogue manager, LM backends, router and the Python agent API."""
