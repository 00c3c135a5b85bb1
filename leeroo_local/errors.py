"""One exception tree, so adapters (CLI, server, TUI) can map failures to messages and codes."""

from __future__ import annotations


class LeerooError(Exception):
    """Base of every error the library raises on purpose; its message is meant for users."""

    exit_code = 1


class ConfigError(LeerooError):
    """A catalog, settings or universe file is invalid; the message names file, entry and field."""

    exit_code = 2


class UnknownExpert(LeerooError):
    """An expert id that the catalog does not list."""

    exit_code = 2


class UnknownQuant(LeerooError):
    """A quantization that the catalog does not offer for an expert."""

    exit_code = 2


class CorruptModel(LeerooError):
    """A file that is not a readable GGUF: wrong magic, truncated, or inconsistent header."""

    exit_code = 2


class UnsupportedModel(LeerooError):
    """A well-formed GGUF of an architecture llama.cpp cannot load."""

    exit_code = 2


class BudgetTooSmall(LeerooError):
    """No expert (or not the requested one) fits the memory budget."""

    exit_code = 3


class DownloadError(LeerooError):
    """A download failed: missing file, size mismatch, or the hub could not be reached."""

    exit_code = 4


class NotPresent(LeerooError):
    """An expert's file is not on this machine, or not the catalog's: a request never fetches it
    (run/chat/serve provision at start; `leeroo-local pull` does it by hand)."""

    exit_code = 4


class NotAvailableOffline(DownloadError):
    """The file is not in the local cache and the network is off (HF_HUB_OFFLINE)."""


class ContextOverflow(LeerooError):
    """The prompt alone does not fit the expert's context window."""

    exit_code = 2

    def __init__(self, prompt_tokens: int, n_ctx: int, expert: str = ""):
        self.prompt_tokens = prompt_tokens
        self.n_ctx = n_ctx
        who = f" of expert {expert}" if expert else ""
        super().__init__(
            f"prompt is {prompt_tokens} tokens but the context{who} holds {n_ctx} tokens"
        )


class HomeError(LeerooError):
    """The home folder cannot hold our files: read-only, full, or its database unusable."""

    exit_code = 2


class FieldError(LeerooError):
    """A request's own fault, in one field: `field` names it (the server's `param`)."""

    exit_code = 2

    def __init__(self, message: str, field: str = ""):
        super().__init__(message)
        self.field = field


class SchemaError(FieldError):
    """A JSON schema for structured output (or a function's parameters) that cannot be turned
    into a grammar; `field` names where it came from (response_format when empty)."""


class UnencodableText(FieldError):
    """Text that UTF-8 cannot encode (a lone surrogate)."""


class MissingCapability(FieldError):
    """The request needs what no eligible expert can do (fill-in-the-middle without FIM
    tokens, say)."""


class TemplateError(FieldError):
    """A conversation the expert's own chat template refuses to render (it raised, say, "roles
    must alternate" or "only supports single tool-calls at once")."""


class NoExpertLeft(LeerooError):
    """Every member that could answer was ruled out (failed this request, backing off, remote
    for a prompt kept local)."""

    exit_code = 5


class ExpertCrashed(LeerooError):
    """The worker process running an expert died during a request."""

    exit_code = 5


class Cancelled(LeerooError):
    """The request was given up (its client went away) before it finished."""

    exit_code = 130


class QuantizationError(LeerooError):
    """A quantization that cannot be made or measured: an impossible conversion, a requantization
    not allowed, files that are not quantizations of the same model."""

    exit_code = 2


class DataError(LeerooError):
    """Outcome or question data that cannot be read or does not match its format."""

    exit_code = 2


class RemoteError(LeerooError):
    """An expert behind HTTP (a remote server, or a llama-server started here) could not be
    reached or refused the request."""

    exit_code = 5


def first_error(exc) -> tuple[tuple, str]:
    """(location, message) of a pydantic ValidationError's first problem, pydantic's "Value error, "
    prefix dropped: the one problem a user is told about at a time."""
    err = exc.errors()[0]
    return tuple(err["loc"]), err["msg"].removeprefix("Value error, ")


def one_line(exc, what: str) -> str:
    """A ValidationError as one line for a user: "WHAT: field.path: message"."""
    loc, msg = first_error(exc)
    return f"{what}: {'.'.join(map(str, loc))}: {msg}"
