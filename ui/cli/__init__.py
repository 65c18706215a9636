"""The `citewise` command line: one module per command group, `main` in ui/cli/main.py."""
