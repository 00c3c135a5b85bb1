"""Backends run an expert: `llama_cpp` for local GGUF files (the only importer of llama_cpp)."""
