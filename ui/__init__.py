"""User interfaces: the command line, the Gradio chat app and the HTTP API."""
