"""The HTTP API (FastAPI): OpenAI-compatible chat completions, documents, and their guards."""
