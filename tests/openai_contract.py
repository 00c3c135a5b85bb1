"""OpenAI's own OpenAPI document as a test oracle: every body and stream chunk `serve` sends is
validated against the schema OpenAI publishes for it.

The schemas come from OpenAI's published document, cut to what these tests use and kept in
tests/openai_schemas/ (source, version and MIT licence there). It marks nullable fields OpenAPI-3.0
style; they become `anyOf: [schema, null]` here. The live API sends `finish_reason: null` in
every stream chunk but the last, which the completions schema does not say; it is allowed.
`RecordingTransport` puts the check under the official `openai` client, so tests that use the
client validate every response it receives without asking.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import httpx2
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

SPEC = Path(__file__).resolve().parent / "openai_schemas" / "openapi-subset.json"
_URI = "urn:openai-openapi"

# (method, path prefix) -> schema of a 200 body; stream chunks use the *_STREAM names.
_WHOLE = {("GET", "/v1/models/"): "Model", ("GET", "/v1/models"): "ListModelsResponse",
          ("POST", "/v1/chat/completions"): "CreateChatCompletionResponse",
          ("POST", "/v1/completions"): "CreateCompletionResponse"}
_STREAM = {"/v1/chat/completions": "CreateChatCompletionStreamResponse",
           "/v1/completions": "CompletionStreamChunk"}


def _nullable(node):
    if isinstance(node, list):
        return [_nullable(n) for n in node]
    if not isinstance(node, dict):
        return node
    node = {k: _nullable(v) for k, v in node.items()}
    if node.pop("nullable", False) is True:
        return {"anyOf": [node, {"type": "null"}]}
    return node


class OpenAIContract:
    """Validators for the schemas of OpenAI's document, and a log of what was checked."""

    def __init__(self, spec: Path = SPEC):
        doc = _nullable(json.loads(spec.read_text(encoding="utf-8")))
        schemas = doc["components"]["schemas"]
        chunk = copy.deepcopy(schemas["CreateCompletionResponse"])
        reason = chunk["properties"]["choices"]["items"]["properties"]["finish_reason"]
        chunk["properties"]["choices"]["items"]["properties"]["finish_reason"] = {
            "anyOf": [reason, {"type": "null"}]}
        schemas["CompletionStreamChunk"] = chunk
        self.schemas = schemas
        self._registry = Registry().with_resource(
            _URI, Resource.from_contents(doc, default_specification=DRAFT202012))
        self._validators: dict[str, Draft202012Validator] = {}
        self.checked: list[tuple[str, str]] = []  # (path, schema) of every validated object
        self.failures: list[str] = []

    def validate(self, name: str, instance) -> None:
        """Raise AssertionError listing every way `instance` breaks schema `name`."""
        if name not in self._validators:
            self._validators[name] = Draft202012Validator(
                {"$ref": f"{_URI}#/components/schemas/{name}"}, registry=self._registry)
        problems = [f"{'/'.join(map(str, e.absolute_path)) or '(root)'}: {e.message}"
                    for e in self._validators[name].iter_errors(instance)]
        if problems:
            raise AssertionError(f"{name}: " + "; ".join(problems[:5]) + f" in {instance!r:.400}")

    def check_response(self, method: str, path: str, status: int, content_type: str,
                       body: bytes) -> None:
        """Validate one response of the server (a stream's complete events only)."""
        if not path.startswith("/v1"):
            return  # /health is leeroo-local's own
        if status >= 400:
            self._check(path, "ErrorResponse", json.loads(body))
        elif content_type.startswith("text/event-stream"):
            for event in body.decode("utf-8").split("\n\n")[:-1]:  # the last piece may be cut off
                for line in event.splitlines():
                    if line.startswith("data: ") and line != "data: [DONE]":
                        data = json.loads(line[len("data: "):])
                        self._check(path, "ErrorResponse" if "error" in data else _STREAM[path], data)
        else:
            name = next(v for (m, p), v in _WHOLE.items() if m == method and path.startswith(p))
            self._check(path, name, json.loads(body))

    def _check(self, path: str, name: str, instance) -> None:
        try:
            self.validate(name, instance)
        except AssertionError as exc:
            self.failures.append(f"{path}: {exc}")
        self.checked.append((path, name))


class _Tee(httpx2.SyncByteStream):
    def __init__(self, inner, on_close):
        self._inner, self._on_close, self._body = inner, on_close, bytearray()

    def __iter__(self):
        for chunk in self._inner:
            self._body.extend(chunk)
            yield chunk

    def close(self) -> None:
        self._inner.close()
        self._on_close(bytes(self._body))


class RecordingTransport(httpx2.HTTPTransport):
    """An httpx2 transport (the openai client's) that validates each response as it is read."""

    def __init__(self, contract: OpenAIContract):
        super().__init__()
        self.contract = contract

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        response = super().handle_request(request)
        method, path, status = request.method, request.url.path, response.status_code
        ctype = response.headers.get("content-type", "")
        response.stream = _Tee(response.stream, lambda body: self.contract.check_response(
            method, path, status, ctype, body))
        return response
