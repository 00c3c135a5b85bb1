"""The only code that downloads, assembles or quantizes an expert's file, or edits the catalog:
hub, hub_probe, starter, ollama_store, ensure, add_expert, remove_expert. Called by `pull`,
`add`, `fit --save` and by run/chat/serve at start, never on a request's path."""
