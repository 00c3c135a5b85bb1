"""Backends run an expert behind one typed seam (`base`): `worker` (a process with `llama_cpp`,
the only importer of llama_cpp), `llama_server`, `openai_remote`; `quantize` runs llama.cpp's
quantizer in child processes."""
