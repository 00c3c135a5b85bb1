"""Cut the schemas that the contract tests use out of OpenAI's full OpenAPI document.

    python tests/openai_schemas/extract.py PATH/TO/openapi.json

writes tests/openai_schemas/openapi-subset.json: the document's `openapi` and `info` fields and
every schema that the named ones reach through `$ref`, unchanged (nullable fields are turned
into JSON Schema by tests/openai_contract.py when it loads them).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOTS = ["Model", "ListModelsResponse", "CreateChatCompletionResponse",
         "CreateChatCompletionStreamResponse", "CreateCompletionResponse", "ErrorResponse",
         "CreateEmbeddingResponse"]
PREFIX = "#/components/schemas/"
HERE = Path(__file__).resolve().parent


def refs(node) -> set[str]:
    """Names of the schemas a node points at."""
    if isinstance(node, list):
        return set().union(*map(refs, node)) if node else set()
    if not isinstance(node, dict):
        return set()
    found = {node["$ref"][len(PREFIX):]} if str(node.get("$ref", "")).startswith(PREFIX) else set()
    return found.union(*map(refs, node.values())) if node else found


def subset(doc: dict, roots: list[str] = ROOTS) -> dict:
    """The document cut down to the closure of `roots` under $ref."""
    schemas = doc["components"]["schemas"]
    keep: dict[str, dict] = {}
    todo = list(roots)
    while todo:
        name = todo.pop()
        if name not in keep:
            keep[name] = schemas[name]
            todo.extend(refs(schemas[name]) - keep.keys())
    return {"openapi": doc["openapi"], "info": doc["info"],
            "components": {"schemas": dict(sorted(keep.items()))}}


def main() -> None:
    source = Path(sys.argv[1])
    out = HERE / "openapi-subset.json"
    doc = subset(json.loads(source.read_text(encoding="utf-8")))
    out.write_text(json.dumps(doc, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"{len(doc['components']['schemas'])} schemas, {out.stat().st_size:,} bytes -> {out}")


if __name__ == "__main__":
    main()
