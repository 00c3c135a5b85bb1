"""The Textual chat (`leeroo-local chat`), installed as leeroo_local.tui (see pyproject.toml)."""
