"""leeroo-local: a pool of small quantized LLMs that behaves like one strong model."""

__version__ = "0.1.0"
