"""The only code that downloads, assembles or quantizes an expert's file (hub, starter, ensure),
or edits the user's catalog (add_expert, remove_expert, catalog_edit, from what hub_probe,
ollama_store and expert_facts read). Called by `pull`, `add`, `quant`, and by run, chat, serve
and selfplay at start; never on a request's path."""
