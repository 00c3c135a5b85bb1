"""The facade the adapters (CLI, server, TUI) use: route a prompt, run it on an expert, measure.

Experts run on backends (backends/base.py) that runners.py picks by the catalog's source kind:
local files in the pool (loaded on demand, unloaded when memory is needed or their keep-alive
ends), servers elsewhere over HTTP. Nothing here asks which: the adapters see only routes, text
events and results, and this module only backends, runners and Final results.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Iterator, Literal

from pydantic import BaseModel, Field

from ..backends.base import Final, Request, Sampling
from ..catalog import Catalog, OpenAISource, load_user_catalog
from ..errors import Cancelled, LeerooError, MissingCapability, NoExpertLeft
from ..hardware import EnergyMeter
from ..settings import Settings
from ..store.requests import RequestLog
from ..textcheck import require_encodable
from ..toolcalls import ToolCall, ToolCallDelta, ToolCallParser, Tools, has_tool_turns
from ..universe import Member, Universe, current_universe
from .eligibility import FALLBACK, Eligibility, Failure, PrivacyDecision
from .hosts import HostMonitor
from .runners import Runners, present

if TYPE_CHECKING:
    from .routing import UniverseRouter  # imported on first route (onnxruntime)

log = logging.getLogger(__name__)

NAMED = "named by the request"
"""The route's reason when the request named its expert (no policy involved)."""


class Route(BaseModel):
    """Which expert answers and why."""

    expert: str = Field(description="Catalog id of the expert that answers.")
    quant: str = Field(description="Its quantization.")
    scores: dict[str, float] = Field(
        default_factory=dict,
        description="Predicted score in [0, 1] of every universe expert on this prompt (empty "
        "when the expert was named or no policy knows the universe).")
    reason: str = Field(default="", description="Why this expert, in a short sentence.")
    route_s: float = Field(default=0.0, description="Seconds the routing decision took.")
    policy_load_s: float = Field(
        default=0.0, description="Of route_s, the seconds spent loading the routing policy: "
        "non-zero only on a process's first routed request (the policy is loaded once, lazily).")
    failed: list[Failure] = Field(
        default_factory=list, description="Experts that failed this request before their first "
        "token, in order; the request fell back from each to the next best (empty: none).")
    privacy: PrivacyDecision | None = Field(
        default=None, description="Whether the prompt was kept on this machine, and by what.")
    task: str | None = Field(
        default=None, description="The kind of work the routing policy recognised in the prompt "
        "(its best guess among the tasks of its training data, e.g. gsm8k or human_eval); None "
        "when the expert was named or the policy learned no kinds.")


class Timings(BaseModel):
    route_s: float = 0.0
    load_s: float = 0.0
    ttft_s: float = 0.0
    total_s: float = 0.0
    tokens_per_s: float = 0.0


class Energy(BaseModel):
    joules: float
    method: str = Field(description="measured (RAPL/NVML) or estimated (CPU time x W/core).")
    source: str = ""


class Threads(BaseModel):
    """llama.cpp threads where this machine computed the answer."""

    generation: int = Field(description="Threads decoding tokens (default: physical cores).")
    batch: int = Field(description="Threads evaluating the prompt.")


class Result(BaseModel):
    """A finished request: the answer and everything measured about it."""

    answer: str
    expert: str
    quant: str
    route: Route
    timings: Timings
    tokens: dict[str, int]
    energy: Energy
    finish_reason: str
    threads: Threads | None = Field(default=None, description="None: computed elsewhere.")
    tool_calls: list[ToolCall] = Field(
        default_factory=list, description="The functions the expert called (a request with "
        "tools); `answer` is then the text beside the calls. finish_reason is tool_calls.")


@dataclass(frozen=True)
class Asked:
    """What a request asked besides its text: its conversation (groups turns in the log, keeps
    a conversation local once a turn was), its privacy header, and how long its expert stays
    loaded once idle (Ollama's keep_alive; None: the settings')."""

    conversation: str | None = None
    privacy: str | None = None
    keep_alive_s: float | None = None
    suffix: str | None = None  # fill in the middle between the prompt and this
    tools: Tools | None = None  # functions a chat offers (toolcalls.Tools)


@dataclass
class TextEvent:
    """A piece of the answer."""

    text: str


@dataclass
class Progress:
    """Where a request stands before its first token, so adapters are never silent during a
    cold load: "routed" (the route is known), "loading" (the expert is being loaded; only for
    a cold expert), "generating" (loaded; load_s is what it cost)."""

    stage: Literal["routed", "loading", "generating"]
    route: Route
    load_s: float = 0.0


class Service:
    """Everything a request needs, built once: catalog, universe, settings, loaded experts."""

    def __init__(self, settings: Settings, catalog: Catalog | None = None,
                 universe: Universe | None = None, log: RequestLog | None = None,
                 client: str = "cli"):
        self.settings = settings
        self.catalog = catalog or load_user_catalog()
        self.universe = universe or current_universe(self.catalog)
        if settings.n_ctx:
            self.universe = self.universe.model_copy(update={"n_ctx": settings.n_ctx})
        self._runners = Runners(settings, self.catalog, self.universe)
        self._log = log
        self._lazy_lock = threading.Lock()
        self._route_lock = threading.Lock()
        self._router: UniverseRouter | Literal[False] | None = None  # False: no policy knows it
        self._load_s: dict[str, float] = {}
        self._eligibility = Eligibility(self.catalog)
        self._hosts = HostMonitor(self.universe, self._eligibility, _added_hosts)
        self.client = client
        self.observers: list[Callable[[dict], None]] = []
        """Called with every request's log row (the server's /metrics counts them)."""

    def route(self, prompt: str, expert: str = "auto",
              eligible: Callable[[Member], bool] | None = None) -> Route:
        """The expert for `prompt`: the one named, or the routing policy's choice (routing.py)
        among the `eligible` members (all when None; eligibility.py)."""
        started = time.perf_counter()
        if expert != "auto":
            member = next((m for m in self.universe.members if m.expert == expert), None)
            quant = member.quant if member else self.catalog.get(expert).default_quant
            self.catalog.get(expert).quant(quant)
            return Route(expert=expert, quant=quant, reason=NAMED,
                         route_s=time.perf_counter() - started)
        cold = self._router is None
        router = self.router()
        load_s = time.perf_counter() - started if cold else 0.0
        if router is None:
            first = next((m for m in self.universe.members if eligible is None or eligible(m)),
                         None)
            if first is None:
                raise NoExpertLeft("no member of the universe may answer this request")
            return Route(expert=first.expert, quant=first.quant,
                         reason="no routing policy knows this universe's experts: its first member",
                         route_s=time.perf_counter() - started, policy_load_s=load_s)
        with self._route_lock:  # the session budget is charged in order
            choice = router.choose(
                prompt, loaded=lambda m: self._is_warm(Route(expert=m.expert, quant=m.quant)),
                measured_load_s=lambda m: self._load_s.get(f"{m.expert}:{m.quant}"),
                eligible=eligible)
        return Route(expert=choice.member.expert, quant=choice.member.quant, scores=choice.scores,
                     reason=choice.reason, task=choice.task, route_s=time.perf_counter() - started,
                     policy_load_s=load_s)

    def warm_router(self) -> threading.Thread:
        """Load the routing policy in the background, so that a long-lived front end (serve,
        chat) does not charge it to its first request; a route that comes first waits on it."""
        thread = threading.Thread(target=self.router, name="leeroo-policy-load", daemon=True)
        thread.start()
        return thread

    def router(self):
        """The universe's routing policy (a UniverseRouter), loaded once on first use; None when
        no policy knows any of the universe's experts (a warning says so)."""
        with self._lazy_lock:
            if self._router is None:
                self._router = self._load_router() or False
            return self._router or None

    def _load_router(self):
        from ..policy import load_policy
        from ..policy.shipped import resolve_policy
        from .routing import UniverseRouter

        # A remote member is known to a policy by its id or by the model its host serves.
        sources = [self.catalog.get(i).source for i in self.universe.ids()]
        names = self.universe.ids() + [s.model for s in sources if isinstance(s, OpenAISource)]
        folder = resolve_policy(self.settings.policy, names)
        if folder is None:
            log.warning("no routing policy knows any of %s: routing to the first member",
                        ", ".join(self.universe.ids()))
            return None
        policy = load_policy(folder)
        threads = self.settings.n_threads or max(1, (os.cpu_count() or 2) // 2)
        bound = UniverseRouter(policy, policy.labels.name, self.universe, self.catalog,
                               cost_weight=self.settings.cost_weight,
                               swap_penalty=self.settings.swap_penalty,
                               watts=self.settings.watts_per_core, threads=threads,
                               max_mean_cost=self.settings.max_mean_cost,
                               quants=policy.labels.quants)
        if not bound.covers_any:
            log.warning("policy %s knows none of %s: routing to the first member",
                        folder, ", ".join(self.universe.ids()))
            return None
        return bound

    def local_file(self, expert: str, quant: str):
        """The expert's file on this machine (NotPresent when it is not; see runners.present)."""
        return present(self.catalog, expert, quant)

    def pool(self):
        """The pool of local experts, started on first use (so `--help` and routing start nothing)."""
        return self._runners.local.pool()

    def load_plan(self, path):
        """The MemoryEstimate a load of this expert file follows (memory_plan.py)."""
        return self._runners.local.load_plan(path)

    def sampling(self, **given) -> Sampling:
        """A request's sampling: what the caller gives (None: not given) over the settings'
        defaults (`[sampling]` in config.toml)."""
        from pydantic import ValidationError

        from ..errors import ConfigError, one_line

        chosen = {k: v for k, v in given.items() if v is not None}
        try:
            return Sampling(**{**self.settings.sampling.model_dump(), **chosen})
        except ValidationError as exc:
            raise ConfigError(one_line(exc, "sampling")) from None

    def chat(self, messages: list[dict], expert: str = "auto", sampling: Sampling | None = None,
             cancel: threading.Event | None = None, conversation: str | None = None,
             privacy: str | None = None, keep_alive_s: float | None = None,
             tools: Tools | None = None
             ) -> Iterator[Progress | TextEvent | ToolCallDelta | Result]:
        """Stream Progress events, TextEvents (and ToolCallDeltas, with `tools`), then one Result
        with the route, timings, tokens, energy and the calls made.

        A chat with tools, or with calls and results in its history, goes only to an expert whose
        chat template renders tools. Closing the iterator early (a client that went away)
        cancels the generation.
        """
        prompt = next((m.get("content") or "" for m in reversed(messages) if m.get("role") == "user"), "")
        return self._logged("chat", messages, prompt, expert, sampling, cancel,
                            Asked(conversation, privacy, keep_alive_s, tools=tools))

    def complete(self, prompt: str, expert: str = "auto", sampling: Sampling | None = None,
                 cancel: threading.Event | None = None, privacy: str | None = None,
                 keep_alive_s: float | None = None, suffix: str | None = None,
                 conversation: str | None = None) -> Iterator[Progress | TextEvent | Result]:
        """Like chat, for a plain prompt (OpenAI's legacy completions); with `suffix`, the
        middle between the prompt and it (fill-in-the-middle, on an expert with FIM tokens)."""
        return self._logged("complete", prompt, prompt, expert, sampling, cancel,
                            Asked(conversation, privacy, keep_alive_s, suffix))

    @property
    def log(self) -> RequestLog:
        """The request log (opened on first use)."""
        with self._lazy_lock:
            if self._log is None:
                self._log = RequestLog()
            return self._log

    def _kept_local_before(self, conversation: str) -> bool:
        """Whether the request log holds a turn of `conversation` that was kept on this machine
        (a conversation stays local across restarts)."""
        try:
            return any(row.get("privacy") for row in self.log.recent(200, conversation))
        except Exception:  # noqa: BLE001 - a log that cannot be read keeps nothing from routing
            return False

    def log_state(self) -> dict:
        """The request log's health (`ok`, or `degraded` with rows waiting and lost), for
        /health; `unopened` before the first request."""
        if self._log is None:
            return {"status": "unopened"}
        return dataclasses.asdict(self._log.state())

    def record_request(self, **row) -> None:
        """Log a request; the log never changes an answer (RequestLog keeps rows it cannot
        write; a log that cannot even be opened is reported here)."""
        try:
            self.log.record(**row)
        except Exception as exc:  # noqa: BLE001 - whatever the log does, the answer stands
            log.error("request log: %s: %s", type(exc).__name__, exc)
        for observe in self.observers:
            try:
                observe(row)
            except Exception as exc:  # noqa: BLE001 - nor does a metric
                log.error("request observer: %s: %s", type(exc).__name__, exc)

    def _logged(self, op, payload, prompt, expert, sampling, cancel, asked: Asked):
        """Run a request and log it, whatever happens: result, error, or cancellation."""
        messages = payload if op == "chat" else None
        record = dict(kind=op, prompt=prompt, messages=messages, client=self.client,
                      conversation=asked.conversation)
        route_box: list[Route] = []
        sent: list[str] = []  # what the client received, kept in the row of a request cut short
        logged = False
        try:
            for event in self._run(op, payload, prompt, expert, sampling, cancel, route_box, asked):
                if isinstance(event, Result):
                    self.record_request(result=event, **record)
                    logged = True
                elif isinstance(event, TextEvent):
                    sent.append(event.text)
                yield event
        except (GeneratorExit, Cancelled):
            if logged:  # closed once its Result was out: answered, and logged once
                raise
            why = getattr(cancel, "reason", None) or "the client went away"
            self.record_request(route=route_box[-1] if route_box else None, partial=sent,
                                error=f"cancelled: {why}", **record)
            raise
        except LeerooError as exc:
            self.record_request(route=route_box[-1] if route_box else None, partial=sent,
                                error=f"{type(exc).__name__}: {exc}", **record)
            raise

    @contextlib.contextmanager
    def _expert(self, route: Route, cancel: threading.Event | None = None,
                keep_alive_s: float | None = None):
        """(Backend, load seconds, on a GPU) for the routed expert, from the runner its source
        kind names. A set `cancel` takes a request out of the expert's queue (Cancelled)."""
        with self._runners.of(route.expert).open(self.catalog.get(route.expert), route.quant,
                                                 cancel, keep_alive_s) as (backend, load_s, on_gpu):
            if load_s:
                self._load_s[f"{route.expert}:{route.quant}"] = load_s  # the router's expected load
            yield backend, load_s, on_gpu

    def _is_warm(self, route: Route) -> bool:
        """True when the routed expert needs no load (its runner says: loaded now, or elsewhere)."""
        return self._runners.of(route.expert).is_warm(self.catalog.get(route.expert), route.quant)

    def _run(self, op, payload, prompt, expert, sampling, cancel, route_box, asked: Asked):
        """Route, answer, and fall back: an `auto` request whose expert fails before its first
        token goes to the next best eligible member (eligibility.py), the failure kept in the
        route; a named expert's failure, or one after the first token, is the request's."""
        require_encodable(payload, "messages" if op == "chat" else "prompt")
        sampling = sampling or self.sampling()
        cancel = cancel or threading.Event()
        texts = [m.get("content") or "" for m in payload] if op == "chat" else [payload]
        kept = self._eligibility.privacy([t for t in texts if isinstance(t, str)],
                                         self.settings.privacy, asked.privacy, asked.conversation,
                                         self._kept_local_before)
        failed: list[Failure] = []
        fim = asked.suffix is not None
        tools = op == "chat" and (asked.tools is not None or has_tool_turns(payload))
        needs = (self._eligibility.needs(self.universe.members, op, fim, tools)
                 if expert == "auto" else set())
        if tools and expert != "auto":
            self._eligibility.check_tools(self.route(prompt, expert))
        started = time.perf_counter()
        while True:
            route = self.route(prompt, expert,
                               self._eligibility.test(failed, kept.local_only, needs))
            if expert == "auto" and op == "chat" and not needs:
                route = route.model_copy(update={"reason": route.reason + "; no instruct expert "
                                                 "in this universe: a base model continues the "
                                                 "conversation"})
            self._eligibility.check_named(route.expert, kept)  # a named expert may be ruled out
            route = route.model_copy(update={"failed": list(failed), "privacy": kept})
            route_box.append(route)
            yield Progress("routed", route)
            answered = False
            try:
                for event in self._answer(op, payload, route, sampling, cancel, started,
                                          asked.keep_alive_s, asked.suffix, asked.tools):
                    answered = answered or isinstance(event, (TextEvent, ToolCallDelta))
                    if isinstance(event, Result):
                        self._eligibility.answered(route.expert)  # its host is up
                    yield event
                return
            except FALLBACK as exc:
                if expert != "auto" or answered or cancel.is_set():
                    raise
                self._eligibility.failed(route.expert, exc)
                failed.append(Failure(expert=route.expert, quant=route.quant,
                                      error=f"{type(exc).__name__}: {exc}"))
                log.warning("%s failed before its first token (%s): falling back", route.expert,
                            failed[-1].error)
                left = self._eligibility.test(failed, kept.local_only, needs)
                if not any(left(m) for m in self.universe.members):
                    raise exc  # nobody left: the last failure is the answer

    def _answer(self, op, payload, route: Route, sampling, cancel, started, keep_alive_s=None,
                suffix=None, tools: Tools | None = None):
        """One expert's answer: Progress, TextEvents (ToolCallDeltas with tools), then the
        Result."""
        if not self._is_warm(route):
            yield Progress("loading", route)
        with self._expert(route, cancel, keep_alive_s) as (backend, load_s, on_gpu):
            yield Progress("generating", route, load_s)
            meter = EnergyMeter(self.settings.sysfs_root, self.settings.watts_per_core,
                                pids=[backend.pid] if backend.pid else [], gpu=on_gpu).start()
            gen_start = time.perf_counter()
            parts: list[str] = []
            first_at = None
            final = Final(finish_reason="stop")
            request = (Request(sampling, messages=payload, tools=tools) if op == "chat"
                       else Request(sampling, prompt=payload, suffix=suffix))
            parser = ToolCallParser(tools.names, tools.parallel) if tools is not None else None
            stream = backend.stream(request, cancel)
            try:
                for event in stream:
                    if isinstance(event, Final):
                        final = event
                        continue
                    if first_at is None:
                        first_at = time.perf_counter()
                    parts.append(event)
                    if parser is None:
                        yield TextEvent(event)
                        continue
                    for piece in parser.feed(event):
                        yield TextEvent(piece) if isinstance(piece, str) else piece
                for piece in parser.finish() if parser is not None else ():
                    yield TextEvent(piece) if isinstance(piece, str) else piece
            except GeneratorExit:
                cancel.set()
                for _ in stream:  # drain up to the worker's Final, so the backend stays in sync
                    pass
                raise
            ended = time.perf_counter()
            measured = meter.stop()
        energy = final.energy or measured  # a backend that knows its energy says so
        produced = final.completion_tokens
        decode_s = ended - (first_at or ended)
        calls = parser.calls if parser is not None else []
        finish = final.finish_reason or "stop"
        yield Result(
            answer=parser.content if parser is not None else "".join(parts),
            expert=route.expert, quant=route.quant, route=route, tool_calls=calls,
            timings=Timings(
                route_s=route.route_s, load_s=load_s,
                ttft_s=(first_at - gen_start) if first_at else 0.0,
                total_s=ended - started + route.route_s,
                tokens_per_s=(produced - 1) / decode_s if decode_s > 0 and produced > 1 else 0.0,
            ),
            tokens={"prompt": final.prompt_tokens, "completion": produced,
                    "cached": final.cached_tokens},
            energy=Energy(joules=energy.joules, method=energy.method, source=energy.source),
            finish_reason="tool_calls" if calls and finish == "stop" else finish,
            threads=Threads(generation=final.threads[0], batch=final.threads[1])
            if final.threads else None,
        )

    def status(self) -> list[dict]:
        """Each universe member for the adapters: quantization, name, and its runner's row (memory,
        where it runs, loaded, busy, queued, keep-alive seconds left; runners.Runner.status).
        Starts no worker and touches no network."""
        out = []
        for m in self.universe.members:
            expert = self.catalog.get(m.expert)
            row = {"expert": m.expert, "quant": m.quant, "name": expert.name}
            out.append({**row, **self._runners.of(m.expert).status(expert, m)})
        return out

    def hosts(self, probe: bool = True) -> list[dict]:
        """Each added host's state (runtime/hosts.py): up, down or backing off, when that was
        last known, and the members it serves; with `probe`, stale ones are asked (~1 s at most)."""
        return [s.model_dump() for s in self._hosts.states(probe=probe)]

    def count_tokens(self, messages: list[dict], expert: str = "auto",
                     tools: Tools | None = None) -> tuple[Route, int]:
        """(the route, the conversation's prompt tokens on that expert): what it would read,
        tools included."""
        require_encodable(messages, "messages")
        prompt = next((m.get("content") or "" for m in reversed(messages)
                       if m.get("role") == "user"), "")
        if expert == "auto":
            needs = self._eligibility.needs(self.universe.members, "chat",
                                            tools=tools is not None or has_tool_turns(messages))
            route = self.route(prompt, expert, self._eligibility.test([], False, needs))
        else:
            route = self.route(prompt, expert)
        with self._expert(route) as (backend, _, _):
            return route, backend.count_tokens(messages, tools)

    def embed(self, texts: list[str], expert: str = "auto") -> EmbedResult:
        """One vector per text from an embedding model of the universe (the one named, or the
        first that embeds: the routing policy scores answers, not vectors); logged."""
        require_encodable(texts, "input")
        started = time.perf_counter()
        route: Route | None = None
        record = dict(kind="embed", prompt=texts[0][:2000] if texts else "", client=self.client)
        try:
            members = self.universe.members
            if expert == "auto":
                needs = self._eligibility.needs(members, "embed")
                test = self._eligibility.test([], False, needs)
                member = next(m for m in members if test(m))
                route = Route(expert=member.expert, quant=member.quant,
                              reason="the universe's embedding model")
            else:
                route = self.route("", expert)
                have = self._eligibility.capabilities(Member(expert=route.expert,
                                                             quant=route.quant))
                if "embeddings" not in have:
                    raise MissingCapability(f"model: {expert} is not an embedding model",
                                            field="model")
            with self._expert(route) as (backend, load_s, on_gpu):
                meter = EnergyMeter(self.settings.sysfs_root, self.settings.watts_per_core,
                                    pids=[backend.pid] if backend.pid else [], gpu=on_gpu).start()
                vectors, tokens = backend.embed(texts)
                energy = meter.stop()
        except LeerooError as exc:
            self.record_request(route=route, error=f"{type(exc).__name__}: {exc}", **record)
            raise
        self.record_request(route=route, **record)
        return EmbedResult(vectors=vectors, expert=route.expert, quant=route.quant, route=route,
                           tokens=tokens, load_s=load_s, total_s=time.perf_counter() - started,
                           energy=Energy(joules=energy.joules, method=energy.method,
                                         source=energy.source))

    def loglikelihoods(self, expert: str, context: str, continuations: list[str]) -> list[float]:
        """Log-probability of each continuation after `context` on a local expert (for
        multiple-choice scoring); KV cache of the context is reused across continuations."""
        return self.loglikelihoods_measured(expert, context, continuations).values

    def close(self) -> None:
        """Stop the experts (the pool's workers, HTTP clients) and close the log."""
        self._runners.close()
        if self._log is not None:
            self._log.close()
            self._log = None

    def loglikelihoods_measured(self, expert: str, context: str,
                                continuations: list[str]) -> LoglikResult:
        """`loglikelihoods` with the time and energy it cost (self-play reports both)."""
        route = self.route(context, expert)
        started = time.perf_counter()
        with self._expert(route) as (backend, load_s, on_gpu):
            meter = EnergyMeter(self.settings.sysfs_root, self.settings.watts_per_core,
                                pids=[backend.pid] if backend.pid else [], gpu=on_gpu).start()
            values = backend.loglikelihoods(context, continuations)
            energy = meter.stop()
        return LoglikResult(values=values, expert=route.expert, quant=route.quant, load_s=load_s,
                            total_s=time.perf_counter() - started,
                            energy=Energy(joules=energy.joules, method=energy.method,
                                          source=energy.source))


class EmbedResult(BaseModel):
    """Vectors of texts on one embedding model, and what they cost."""

    vectors: list[list[float]] = Field(description="One normalised vector per text, in order.")
    expert: str = Field(description="The embedding model.")
    quant: str = Field(description="Its quantization.")
    route: Route = Field(description="Why this model.")
    tokens: int = Field(description="Tokens read.")
    load_s: float = Field(default=0.0, description="Seconds spent loading it first.")
    total_s: float = Field(description="Seconds from the request to the vectors.")
    energy: Energy = Field(description="Energy of the embedding (the load not included).")


class LoglikResult(BaseModel):
    """Log-likelihoods of continuations on one expert, and what computing them cost."""

    values: list[float] = Field(description="Log-probability of each continuation, in order.")
    expert: str = Field(description="The expert that scored them.")
    quant: str = Field(description="Its quantization.")
    load_s: float = Field(default=0.0, description="Seconds spent loading the expert first.")
    total_s: float = Field(description="Seconds from the request to the values, load included.")
    energy: Energy = Field(description="Energy of the scoring itself (the load not included).")


def _added_hosts() -> list:
    """The hosts file's hosts; none when it cannot be read (`hosts list` names the problem)."""
    from ..errors import ConfigError
    from ..hosts import load_hosts

    try:
        return load_hosts()
    except ConfigError as exc:
        log.warning("hosts: %s", exc)
        return []
