"""The Gradio chat web UI: layout and wiring (chat.py), answers, sources, sessions, the
knowledge-base tab and the zh/en strings."""
