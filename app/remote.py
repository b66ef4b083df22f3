"""OpenAI-compatible chat completions with a request cache, retries and accounting.

One `RemoteClient` per endpoint (one role of tailor.toml), owning one long-lived
``httpx.AsyncClient``. Every request is keyed by a hash of what determines its answer
(endpoint, model, messages, sampling parameters, prompt hash); a finished response is
written to the store's ``api_calls`` table *before* it is handed back, so re-running a
stage after a crash or Ctrl-C never pays twice for a finished call. An ``ok`` row is
final; an ``error`` row (a request that still failed after its retries) is tried again on
the next run.

Faults: 429, 5xx, timeouts, dropped connections and malformed bodies are retried with
exponential backoff and jitter, honouring Retry-After (capped). 401/402/403/404 stop the
stage at once with `RemoteFatalError` (bad key, no credit, bad model name or URL). Other
4xx (e.g. a prompt longer than the context) are recorded as errors; the stage goes on.

The API key is only ever put into the Authorization header. It is never part of a
stored request, a log line, a result or an exception message (server messages that echo
it are scrubbed).

Offline providers live here too so later stages see one interface: `reference_result`
(teacher: the problem's reference solution is the CoT), `rules_grade` (judge: grade
from answer correctness alone) and `steps_grade` (judge: answer correctness and the
reference solution's steps found in the CoT). Every result carries its provider label.
"""

from __future__ import annotations

import asyncio
import email.utils
import hashlib
import json
import logging
import random
import re
import time
from collections import Counter, deque
from collections.abc import AsyncIterator, Awaitable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import Any, Callable

import httpx

from app.answers import reference_steps, steps_reached
from app.errors import ConfigError, TailorError
from app.events import Events
from app.records import ApiCall, Problem
from app.store import Store

log = logging.getLogger("tailor.remote")

# Statuses that mean "this endpoint/key/model cannot work": stop the stage at once.
FATAL_STATUSES = {401: "Unauthorized", 402: "Payment Required", 403: "Forbidden", 404: "Not Found"}
# Worth another try: rate limits, timeouts on the server side, conflicts, every 5xx.
RETRY_STATUSES = {408, 409, 425, 429}
MAX_ERROR_CHARS = 300
MAX_NOTES = 5  # per kind and chat_many call: failures / truncations shown through events


class RemoteError(TailorError):
    """A remote endpoint could not be used."""


class RemoteFatalError(RemoteError):
    """401/402/403/404 and friends: the stage stops; the message is one line, key-free."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


@dataclass
class RetryPolicy:
    """How hard to try before a request is recorded as failed."""

    max_retries: int = 6  # retries after the first attempt
    backoff_base: float = 1.0  # seconds; attempt n waits ~ base * 2**n (equal jitter)
    backoff_max: float = 60.0  # cap of one backoff delay
    retry_after_max: float = 120.0  # cap of a server's Retry-After
    # A 500/502/504, a dropped connection or a garbled body is usually one bad backend or
    # connection, not load: its backoff starts at a quarter of the base. Rate limits and
    # overload (429 without Retry-After, 503, 529, timeouts) get the full base.
    transient_factor: float = 0.25

    def backoff(self, retry: int, rng: random.Random, kind: str = "429") -> float:
        base = self.backoff_base * (1.0 if kind in LOAD_KINDS else self.transient_factor)
        d = min(self.backoff_max, base * (2**retry))
        return d / 2 + rng.uniform(0, d / 2)


LOAD_KINDS = ("429", "503", "529", "timeout")  # retry kinds that mean "the server is busy"


class _Window:
    """The concurrency limit, with retries served before first attempts. All of a stage's
    requests wait here from the start, so a plain FIFO would send every retry after the
    whole queue: the stage's tail would be one retry chain long at the very end."""

    def __init__(self, size: int):
        self.free = size
        self.waiting: dict[bool, deque] = {False: deque(), True: deque()}  # first attempt? -> futures

    @asynccontextmanager
    async def slot(self, first: bool = True):
        retries, firsts = self.waiting[False], self.waiting[True]
        if self.free > 0 and not retries and not (first and firsts):  # nobody to let go first
            self.free -= 1
        else:
            fut = asyncio.get_running_loop().create_future()
            self.waiting[first].append(fut)
            try:
                await fut  # resolved with the slot already ours
            except asyncio.CancelledError:
                if fut.done() and not fut.cancelled():
                    self._release()  # handed a slot while being cancelled: pass it on
                else:
                    self.waiting[first].remove(fut)
                raise
        try:
            yield
        finally:
            self._release()

    def _release(self) -> None:
        for queue in (self.waiting[False], self.waiting[True]):  # retries first
            while queue:
                fut = queue.popleft()
                if not fut.done():
                    fut.set_result(None)
                    return
        self.free += 1


@dataclass
class ChatRequest:
    """One chat request for `RemoteClient.chat_many`; None = the provider's config value."""

    messages: list[dict]
    stage: str
    prompt_hash: str | None = None
    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    json_mode: bool = False
    variant: str | None = None  # part of the cache key only: tells repeated samples apart


UNREADABLE = "unreadable even after one repair call"


@dataclass
class Parsed:
    """What `RemoteClient.parse_or_repair` made of a reply: the value, or why there is none,
    and the reply it comes from (the repair's when one was needed)."""

    value: Any
    result: "ChatResult"
    error: str | None


def repair_request(req: ChatRequest, bad: ChatResult, instruction: str) -> ChatRequest:
    """The one retry for an unusable reply: the bad reply and an instruction appended (so
    its cache key differs from the first call's; a retried request's repair is its own)."""
    messages = req.messages + [
        {"role": "assistant", "content": bad.content or ""},
        {"role": "user", "content": instruction},
    ]
    return ChatRequest(
        messages=messages,
        stage=req.stage,
        prompt_hash=req.prompt_hash,
        temperature=req.temperature,
        top_p=req.top_p,
        max_tokens=req.max_tokens,
        json_mode=True,
        variant="repair" if req.variant is None else f"{req.variant}/repair",
    )


@dataclass
class ChatResult:
    key: str
    role: str
    provider: str  # "openai", "mlx-server", "reference": shown with every output
    model: str
    content: str | None = None
    reasoning: str | None = None  # reasoning_content / reasoning field and <think> blocks
    finish_reason: str | None = None
    truncated: bool = False  # finish_reason == "length": the output was cut, not accepted silently
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cost: float | None = None  # USD, None when the config has no prices
    latency_s: float | None = None  # of the attempt that succeeded
    retries: int = 0
    cached: bool = False  # answered from api_calls (or a twin request in flight), not paid now
    error: str | None = None
    served_model: str | None = None  # the model name the server reported, when it did

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass
class Totals:
    """What one client did in this session (paid calls only for tokens and cost)."""

    requests: int = 0
    cached: int = 0
    ok: int = 0
    errors: int = 0
    truncated: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float | None = None
    retries: Counter = field(default_factory=Counter)  # reason -> count

    def summary(self) -> str:
        parts = [f"{self.requests} requests", f"{self.cached} cached", f"{self.errors} failed"]
        if self.truncated:
            parts.append(f"{self.truncated} truncated (finish_reason=length)")
        parts.append(f"{self.prompt_tokens}+{self.completion_tokens} tokens")
        if self.cost is not None:
            parts.append(f"${self.cost:.4f}")
        if self.retries:
            parts.append("retries " + ", ".join(f"{k} {v}" for k, v in sorted(self.retries.items())))
        return ", ".join(parts)


# -- pure helpers ----------------------------------------------------------------

_THINK = re.compile(r"<think>(.*?)</think>", re.S)


def split_think(text: str | None) -> tuple[str | None, str | None]:
    """Separate ``<think>...</think>`` blocks from the final content.

    Also handles output that starts inside a think block (the chat template opened it,
    so only ``</think>`` appears) and an unclosed ``<think>`` cut off by max_tokens.
    """
    if text is None or ("<think>" not in text and "</think>" not in text):
        return text, None
    parts: list[str] = []
    close, open_ = text.find("</think>"), text.find("<think>")
    if close != -1 and (open_ == -1 or close < open_):
        head, text = text.split("</think>", 1)
        parts.append(head)
    parts.extend(m.group(1) for m in _THINK.finditer(text))
    text = _THINK.sub("", text)
    if "<think>" in text:
        text, tail = text.split("<think>", 1)
        parts.append(tail)
    reasoning = "\n\n".join(p.strip() for p in parts if p.strip()) or None
    return text.strip(), reasoning


def _text_of(value: Any) -> str | None:
    """Message content is a string, null, or (some providers) a list of text parts."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, list):
        texts = [p.get("text", "") if isinstance(p, dict) else str(p) for p in value]
        return "".join(texts)
    return str(value)


def parse_retry_after(headers: httpx.Headers) -> float | None:
    """Seconds from ``retry-after-ms`` or ``Retry-After`` (seconds or an HTTP date)."""
    ms = headers.get("retry-after-ms")
    if ms:
        try:
            return max(0.0, float(ms) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - datetime.now(timezone.utc)).total_seconds())


def cost_usd(provider_cfg: Any, prompt_tokens: int | None, completion_tokens: int | None) -> float | None:
    p_in, p_out = getattr(provider_cfg, "price_in", None), getattr(provider_cfg, "price_out", None)
    if p_in is None and p_out is None:
        return None
    if prompt_tokens is None and completion_tokens is None:
        return None
    return ((prompt_tokens or 0) * (p_in or 0.0) + (completion_tokens or 0) * (p_out or 0.0)) / 1e6


def request_key(payload: dict) -> str:
    blob = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def _error_message(resp: httpx.Response) -> str:
    """The server's own words about an error, short."""
    try:
        data = resp.json()
    except ValueError:
        return resp.text.strip()[:MAX_ERROR_CHARS]
    if isinstance(data, dict):
        err = data.get("error", data)
        if isinstance(err, dict):
            msg = err.get("message") or err.get("detail") or json.dumps(err)[:MAX_ERROR_CHARS]
            return str(msg)[:MAX_ERROR_CHARS]
        return str(err)[:MAX_ERROR_CHARS]
    return str(data)[:MAX_ERROR_CHARS]


def _is_quota_error(resp: httpx.Response) -> bool:
    """OpenAI answers 429 'insufficient_quota' when credit is gone: retrying cannot help."""
    try:
        err = resp.json().get("error")
    except (ValueError, AttributeError):
        return False
    return isinstance(err, dict) and (
        err.get("code") == "insufficient_quota" or err.get("type") == "insufficient_quota"
    )


class _Retry(Exception):
    """Internal: this attempt failed in a way worth another try."""

    def __init__(self, kind: str, reason: str, wait: float | None = None):
        self.kind, self.reason, self.wait = kind, reason, wait


class _Fail(Exception):
    """Internal: this request failed for good (in this run)."""


# -- the client -----------------------------------------------------------------


class RemoteClient:
    """Chat completions against one OpenAI-compatible endpoint. Use as an async context manager.

    ``provider_cfg`` is an `OpenAIProvider` or `MlxServerProvider`; for mlx-server pass the
    running server's ``base_url`` (see app/mlx_server.py). ``api_key`` comes from
    ``Config.api_key(role)`` and is only ever sent in the Authorization header.
    """

    def __init__(
        self,
        provider_cfg: Any,
        role: str,
        store: Store | None,
        api_key: str | None = None,
        *,
        base_url: str | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        retry: RetryPolicy | None = None,
        concurrency: int | None = None,
        sleep: Callable[[float], Any] | None = None,
        seed: int | None = None,
    ):
        self.cfg = provider_cfg
        self.role = role
        self.store = store
        self.provider: str = provider_cfg.provider
        self.model: str = provider_cfg.model
        self.adapter: str | None = getattr(provider_cfg, "adapter", None)
        if provider_cfg.offline:
            raise ConfigError(f"{role}: provider {self.provider!r} makes no HTTP calls")
        self.endpoint = provider_cfg.cache_endpoint(base_url)
        self.wire_model = provider_cfg.wire_model()
        self.base_url = (base_url or provider_cfg.base_url).rstrip("/")
        self.retry = retry or RetryPolicy()
        self.concurrency = concurrency or provider_cfg.concurrency
        self.timeout = httpx.Timeout(
            connect=min(30.0, provider_cfg.timeout), read=provider_cfg.timeout, write=60.0, pool=None
        )
        self._secret = api_key or None
        self._transport = transport
        self._sleep = sleep or asyncio.sleep
        self._rng = random.Random(seed)
        self._http: httpx.AsyncClient | None = None
        self._sem: _Window | None = None
        self._inflight: dict[str, asyncio.Future] = {}
        self.totals = Totals()

    def __repr__(self) -> str:  # never shows the key
        return f"RemoteClient(role={self.role!r}, provider={self.provider!r}, model={self.model!r}, endpoint={self.endpoint!r})"

    # -- lifecycle --

    async def __aenter__(self) -> "RemoteClient":
        headers = {"User-Agent": "tailor", "Accept": "application/json"}
        if self._secret:
            headers["Authorization"] = f"Bearer {self._secret}"
        limits = httpx.Limits(max_connections=self.concurrency, max_keepalive_connections=self.concurrency)
        self._http = httpx.AsyncClient(
            base_url=self.base_url + "/",
            headers=headers,
            timeout=self.timeout,
            limits=limits,
            transport=self._transport,
        )
        self._sem = _Window(self.concurrency)
        return self

    async def __aexit__(self, *exc) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    # -- public API --

    def prepare(self, req: ChatRequest) -> tuple[str, dict, dict]:
        """(cache key, stored request, HTTP body) for a request, with config defaults applied."""
        temperature = self.cfg.temperature if req.temperature is None else req.temperature
        top_p = self.cfg.top_p if req.top_p is None else req.top_p
        max_tokens = self.cfg.max_tokens if req.max_tokens is None else req.max_tokens
        payload = {
            "endpoint": self.endpoint,
            "model": self.model,
            "messages": req.messages,
            "temperature": temperature,
            "top_p": top_p,
            "max_tokens": max_tokens,
            "json_mode": bool(req.json_mode),
            "prompt_hash": req.prompt_hash,
        }
        if self.adapter:
            payload["adapter"] = self.adapter
        if req.variant is not None:
            payload["variant"] = req.variant
        body = {
            "model": self.wire_model,
            "messages": req.messages,
            "temperature": temperature,
            "top_p": top_p,
            "max_tokens": max_tokens,
            "stream": False,
        }
        if req.json_mode:
            body["response_format"] = {"type": "json_object"}
        return request_key(payload), payload, body

    async def chat(
        self,
        messages: list[dict],
        *,
        stage: str,
        prompt_hash: str | None = None,
        temperature: float | None = None,
        top_p: float | None = None,
        max_tokens: int | None = None,
        json_mode: bool = False,
        variant: str | None = None,
        cache: bool = True,
    ) -> ChatResult:
        """One chat completion. Never raises for a failed request (see ``error``) except
        `RemoteFatalError` for 401/402/403/404. ``cache=False`` neither reads nor writes
        api_calls (for `tailor ping`)."""
        req = ChatRequest(messages, stage, prompt_hash, temperature, top_p, max_tokens, json_mode, variant)
        return await self._chat(req, cache=cache)

    async def parse_or_repair(
        self,
        req: ChatRequest,
        res: ChatResult,
        parse: Callable[[str | None], Any],
        instruction: str,
        errors: tuple[type[Exception], ...] = (ValueError,),
    ) -> "Parsed":
        """``parse`` of a reply, after one repair call (the bad reply and ``instruction``, with
        its ``{reason}``, appended) when it raises one of ``errors``; else why not."""
        if res.error:
            return Parsed(None, res, f"{self.role} call failed: {res.error}")
        try:
            return Parsed(parse(res.content), res, None)
        except errors as e:
            why = str(e)
        (fix,) = await self.chat_many([repair_request(req, res, instruction.format(reason=why))])
        if fix.error:
            return Parsed(None, res, f"{why}; the repair call failed: {fix.error}")
        try:
            return Parsed(parse(fix.content), fix, None)
        except errors as e2:
            return Parsed(None, fix, f"{UNREADABLE}: {e2}")

    async def chat_many(
        self,
        requests: Sequence[ChatRequest],
        events: Events | None = None,
        *,
        title: str | None = None,
        then: Callable[[int, ChatResult], Awaitable[None]] | None = None,
    ) -> list[ChatResult]:
        """Run requests under the concurrency limit; results come back in request order.

        A sliding window: every request is a task, and the limit is held only while one is
        on the wire, so a slow request (a long retry chain) never holds up those behind it.
        ``then(i, result)`` runs as soon as request ``i`` finishes — the caller stores or
        follows up on each result as it arrives instead of waiting for a whole batch.

        Each finished request calls ``events.advance(1)``; failures and truncations are
        reported with ``events.message``. With ``title`` the call also brackets the work
        with ``events.start(title, total)`` and ``events.done(summary)``; without it the
        caller owns start/done (several batches can share one progress bar).
        A `RemoteFatalError` cancels the remaining requests (finished ones are already in
        the store) and is raised.
        """
        self._require_open()
        if events is not None and title is not None:
            events.start(title, len(requests))
        before = replace(self.totals, retries=Counter(self.totals.retries))
        shown: Counter = Counter()

        def note(kind: str, text: str) -> None:
            # The first few of each kind are shown; the rest are counted in the summary.
            shown[kind] += 1
            if shown[kind] <= MAX_NOTES:
                events.message(f"{self.role} ({self.provider}): {text}")
            if shown[kind] == MAX_NOTES:
                events.message(f"{self.role}: further {kind} are counted, not shown")

        async def one(i: int, req: ChatRequest) -> ChatResult:
            res = await self._chat(req, cache=True)
            if events is not None:
                if res.error:
                    note("failures", f"request failed: {res.error}")
                elif res.truncated and not res.cached:
                    note("truncations", "output cut at max_tokens (finish_reason=length)")
            if then is not None:
                await then(i, res)
            if events is not None:
                events.advance(1)
            return res

        tasks = [asyncio.ensure_future(one(i, r)) for i, r in enumerate(requests)]
        try:
            if tasks:
                done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
                # Read every finished task's exception, not just the first, so asyncio
                # does not log the others as "never retrieved".
                errors = [t.exception() for t in done if not t.cancelled()]
                errors = [e for e in errors if e is not None]
                if errors:
                    raise errors[0]
        finally:
            pending = [t for t in tasks if not t.done()]
            for t in pending:
                t.cancel()
            if pending:
                await asyncio.gather(*pending, return_exceptions=True)
        results = [t.result() for t in tasks]
        if events is not None and title is not None:
            events.done(_delta(before, self.totals).summary())
        return results

    # -- internals --

    def _require_open(self) -> None:
        if self._http is None or self._sem is None:
            raise RuntimeError("use `async with RemoteClient(...)` before making calls")

    def _scrub(self, text: str) -> str:
        if self._secret:
            text = text.replace(self._secret, "***")
        return re.sub(r"(?i)bearer\s+\S+", "Bearer ***", text)

    def _count(self, res: ChatResult) -> None:
        t = self.totals
        t.requests += 1
        if res.cached:
            t.cached += 1
        elif res.error:
            t.errors += 1
        else:
            t.ok += 1
            t.prompt_tokens += res.prompt_tokens or 0
            t.completion_tokens += res.completion_tokens or 0
            if res.cost is not None:
                t.cost = (t.cost or 0.0) + res.cost
        if res.truncated and not res.cached:
            t.truncated += 1

    async def _chat(self, req: ChatRequest, *, cache: bool) -> ChatResult:
        self._require_open()
        key, payload, body = self.prepare(req)
        if cache and self.store is not None:
            row = self.store.get_api_call(key)
            if row is not None and row.status == "ok":
                res = self._from_row(row)
                self._count(res)
                return res
            twin = self._inflight.get(key)
            if twin is not None:  # the same request is already on the wire: wait for it
                res = replace(await asyncio.shield(twin), cached=True)
                self._count(res)
                return res
            fut = asyncio.get_running_loop().create_future()
            fut.add_done_callback(lambda f: f.cancelled() or f.exception())
            self._inflight[key] = fut
        else:
            fut = None
        try:
            res = await self._execute(key, body)
            if cache and self.store is not None:
                # Stored before it is used: a crash after this line never repeats the call.
                self.store.put_api_call(self._to_row(req, key, payload, res))
            if fut is not None:
                fut.set_result(res)
        except BaseException as e:
            if fut is not None and not fut.done():
                if isinstance(e, asyncio.CancelledError):
                    fut.cancel()
                else:
                    fut.set_exception(e)
            raise
        finally:
            if fut is not None:
                self._inflight.pop(key, None)
        self._count(res)
        return res

    async def _execute(self, key: str, body: dict) -> ChatResult:
        retries = 0
        while True:
            try:
                return await self._attempt(key, body, retries)
            except _Retry as r:
                if retries >= self.retry.max_retries:
                    msg = f"{r.reason} (gave up after {retries} retries)"
                    log.warning("%s: %s", self.role, msg)
                    return self._result(key, error=msg, retries=retries)
                if r.wait is not None:
                    # Honour the server's Retry-After (capped), plus a little jitter.
                    delay = min(r.wait, self.retry.retry_after_max) * (1 + 0.1 * self._rng.random())
                else:
                    delay = self.retry.backoff(retries, self._rng, r.kind)
                retries += 1
                self.totals.retries[r.kind] += 1
                log.info("%s: %s; retry %d/%d in %.2fs", self.role, r.reason, retries, self.retry.max_retries, delay)
                await self._sleep(delay)
            except _Fail as f:
                msg = str(f)
                log.warning("%s: %s", self.role, msg)
                return self._result(key, error=msg, retries=retries)

    async def _attempt(self, key: str, body: dict, retries: int) -> ChatResult:
        assert self._http is not None and self._sem is not None
        async with self._sem.slot(first=retries == 0):
            t0 = time.perf_counter()
            try:
                resp = await self._http.post("chat/completions", json=body)
            except httpx.TimeoutException as e:
                raise _Retry("timeout", f"timeout ({type(e).__name__}, read timeout {self.timeout.read:g}s)") from None
            except httpx.TransportError as e:
                raise _Retry(
                    "connection", f"connection error ({type(e).__name__}: {self._scrub(str(e))[:120]})"
                ) from None
            latency = time.perf_counter() - t0
        status = resp.status_code
        if status in FATAL_STATUSES or (status == 429 and _is_quota_error(resp)):
            raise self._fatal(resp)
        if status in RETRY_STATUSES or status >= 500:
            raise _Retry(
                str(status), f"HTTP {status}: {self._scrub(_error_message(resp))}", parse_retry_after(resp.headers)
            )
        if status >= 400:
            raise _Fail(f"HTTP {status}: {self._scrub(_error_message(resp))}")
        try:
            data = resp.json()
        except ValueError:
            raise _Retry("malformed", f"malformed JSON body (HTTP {status}, {len(resp.content)} bytes)") from None
        if not isinstance(data, dict):
            raise _Retry("malformed", f"malformed body: expected a JSON object, got {type(data).__name__}")
        if "error" in data and not data.get("choices"):
            # Some gateways (OpenRouter) report upstream errors with HTTP 200.
            raise _Retry("upstream", f"error in body: {self._scrub(_error_message(resp))}")
        choices = data.get("choices")
        if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
            raise _Fail(f"empty choices in response (HTTP {status})")
        choice = choices[0]
        message = choice.get("message") or {}
        if not isinstance(message, dict):
            raise _Retry("malformed", "malformed body: choices[0].message is not an object")
        content, think = split_think(_text_of(message.get("content")))
        field_reasoning = _text_of(message.get("reasoning_content")) or _text_of(message.get("reasoning"))
        reasoning = "\n\n".join(p for p in (field_reasoning, think) if p) or None
        finish = choice.get("finish_reason")
        usage = data.get("usage") if isinstance(data.get("usage"), dict) else {}
        pt, ct = _int_or_none(usage.get("prompt_tokens")), _int_or_none(usage.get("completion_tokens"))
        return self._result(
            key,
            content=content,
            reasoning=reasoning,
            finish_reason=finish,
            truncated=finish == "length",
            prompt_tokens=pt,
            completion_tokens=ct,
            cost=cost_usd(self.cfg, pt, ct),
            latency_s=round(latency, 4),
            retries=retries,
            served_model=data.get("model") if isinstance(data.get("model"), str) else None,
        )

    def _fatal(self, resp: httpx.Response) -> RemoteFatalError:
        status = resp.status_code
        env = getattr(self.cfg, "api_key_env", None)
        if status == 401:
            hint = (
                f"the API key in ${env} was rejected"
                if self._secret
                else "the endpoint wants an API key: set api_key_env in tailor.toml"
            )
        elif status == 402 or status == 429:
            hint = "no credit left on this account"
        elif status == 403:
            hint = f"the key may not use model {self.model!r}"
        else:
            hint = f"check base_url {self.base_url!r} and model {self.model!r}"
        said = self._scrub(_error_message(resp)).replace("\n", " ")
        msg = (
            f"{self.role} ({self.provider}, {self.endpoint}, model {self.model}): "
            f"HTTP {status} {FATAL_STATUSES.get(status, '')}".rstrip()
            + f" — {hint}"
            + (f" (server said: {said})" if said else "")
        )
        return RemoteFatalError(msg, status)

    def _result(self, key: str, **kw) -> ChatResult:
        return ChatResult(key=key, role=self.role, provider=self.provider, model=self.model, **kw)

    def _from_row(self, row: ApiCall) -> ChatResult:
        return ChatResult(
            key=row.key,
            role=self.role,
            provider=row.provider,
            model=row.model,
            content=row.content,
            reasoning=row.reasoning,
            finish_reason=row.finish_reason,
            truncated=row.finish_reason == "length",
            prompt_tokens=row.prompt_tokens,
            completion_tokens=row.completion_tokens,
            cost=row.cost,
            latency_s=row.latency_s,
            retries=row.retries,
            cached=True,
            error=row.error,
        )

    def _to_row(self, req: ChatRequest, key: str, payload: dict, res: ChatResult) -> ApiCall:
        return ApiCall(
            key=key,
            stage=req.stage,
            role=self.role,
            provider=self.provider,
            base_url=self.endpoint,
            model=self.model,
            prompt_hash=req.prompt_hash,
            request=payload,
            status="error" if res.error else "ok",
            content=res.content,
            reasoning=res.reasoning,
            finish_reason=res.finish_reason,
            prompt_tokens=res.prompt_tokens,
            completion_tokens=res.completion_tokens,
            cost=res.cost,
            latency_s=res.latency_s,
            retries=res.retries,
            error=res.error,
        )


def _int_or_none(v: Any) -> int | None:
    return v if isinstance(v, int) and not isinstance(v, bool) else None


def _delta(before: Totals, after: Totals) -> Totals:
    d = Totals(
        requests=after.requests - before.requests,
        cached=after.cached - before.cached,
        ok=after.ok - before.ok,
        errors=after.errors - before.errors,
        truncated=after.truncated - before.truncated,
        prompt_tokens=after.prompt_tokens - before.prompt_tokens,
        completion_tokens=after.completion_tokens - before.completion_tokens,
        retries=after.retries - before.retries,
    )
    if after.cost is not None:
        d.cost = after.cost - (before.cost or 0.0)
    return d


@asynccontextmanager
async def open_client(
    config: Any,
    role: str,
    store: Store | None,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    retry: RetryPolicy | None = None,
) -> AsyncIterator[RemoteClient]:
    """A ready client for a role of the config; starts (and stops) mlx_lm.server if needed.

    Raises ConfigError for the offline providers (reference, the offline judges) and for a
    missing key.
    """
    prov = config.role(role)
    if prov.offline:
        raise ConfigError(f"{role} uses the offline provider {prov.provider!r}; it makes no remote calls")
    key = config.api_key(role) if prov.uses_key else None
    async with prov.connect(role, store, key, transport=transport, retry=retry) as client:
        yield client


# -- offline providers ---------------------------------------------------------------


def reference_result(problem: Problem, role: str = "teachers") -> ChatResult:
    """Teacher ``reference``: the problem's reference solution is the CoT (labelled 'reference')."""
    key = f"reference:{problem.id}"
    if not (problem.solution or "").strip():
        return ChatResult(
            key=key,
            role=role,
            provider="reference",
            model="reference",
            error=f"problem {problem.id} has no reference solution",
        )
    return ChatResult(
        key=key, role=role, provider="reference", model="reference", content=problem.solution, finish_reason="stop"
    )


@dataclass
class RulesGrade:
    """An offline judge's grade: ``rules`` (Easy when the answer is correct, Hard otherwise,
    no CoT judgement) or ``steps`` (see `steps_grade`)."""

    grade: str
    answer_correct: bool
    rationale: str
    provider: str = "rules"
    model: str = "rules"


def rules_grade(answer_correct: bool | None) -> RulesGrade:
    if answer_correct:
        return RulesGrade("easy", True, "rules judge: answer correct (CoT not assessed)")
    return RulesGrade("hard", False, "rules judge: answer wrong or missing (CoT not assessed)")


def steps_grade(problem: Problem, cot: str | None, answer_correct: bool | None) -> RulesGrade:
    """Judge ``steps``: how many of the reference solution's steps the CoT reaches.

    The steps are `reference_steps` (the results the reference computes, the final answer
    last); a step is reached when a number in the CoT is equivalent to it, and the final
    one also when the answer checker says the answer is right (it may not be a number).
    "Half" is at least half the steps, the final answer included:

    * answer right and half the steps reached -> easy
    * answer right, fewer steps               -> medium (README: answer right, reasoning flawed)
    * answer wrong or missing, half reached   -> medium (the working is mostly there)
    * answer wrong or missing, fewer          -> hard

    A reference with no computed results (or no solution) has the final answer as its
    only step, so it grades like ``rules`` unless the right value appears in the CoT.
    """
    steps = reference_steps(problem.solution, problem.answer, problem.question)
    hit = steps_reached(steps, cot)
    hit[-1] = hit[-1] or bool(answer_correct)
    reached, total = sum(hit), len(steps)
    half = 2 * reached >= total
    if answer_correct:
        grade = "easy" if half else "medium"
    else:
        grade = "medium" if half else "hard"
    answer = "answer correct" if answer_correct else "answer wrong or missing"
    return RulesGrade(
        grade,
        bool(answer_correct),
        f"steps judge: {reached}/{total} reference steps reached; {answer} (stand-in, CoT not read by an LLM)",
        provider="steps",
        model="steps",
    )
