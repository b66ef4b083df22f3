"""`tailor ping [judge|teachers.short|teachers.long]`: is each configured endpoint usable?

One cheap call per distinct endpoint (a 1-token chat completion, never cached, never
recorded): latency, the model the server reports, and whether the key works. Offline
providers (reference, the offline judges) need no call. An mlx-server role starts mlx_lm.server,
calls it once and stops it.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

import httpx

from app.errors import TailorError
from app.remote import RetryPolicy

ROLES = ("judge", "teachers.short", "teachers.long")
PING_MESSAGES = [{"role": "user", "content": "Reply with OK."}]


@dataclass
class PingResult:
    role: str
    provider: str
    model: str | None
    ok: bool
    latency_s: float | None = None
    detail: str = ""
    endpoint: str | None = None


async def _ping_one(
    config: Any, role: str, *, transport: httpx.AsyncBaseTransport | None, retry: RetryPolicy
) -> PingResult:
    prov = config.role(role)
    if prov.offline:
        return PingResult(
            role, prov.provider, None, True, None, f"offline provider, a stand-in ({prov.stand_in}); no call needed"
        )
    base = PingResult(
        role, prov.provider, prov.model, False, endpoint=getattr(prov, "base_url", None) or f"mlx-server:{prov.model}"
    )
    key, startup = None, ""
    try:
        key = config.api_key(role) if prov.uses_key else None
        t0 = time.perf_counter()
        async with prov.connect(role, None, key, transport=transport, retry=retry, concurrency=1) as client:
            started = time.perf_counter() - t0
            if not prov.uses_key:  # a local server was started for the call
                startup = f"; server started in {started:.1f}s"
            res = await client.chat(PING_MESSAGES, stage="ping", temperature=0.0, max_tokens=1, cache=False)
    except TailorError as e:  # a rejected key, a missing env var, a server that failed to start, ...
        base.detail = str(e)
        return base
    base.latency_s = res.latency_s
    if res.error:
        base.detail = res.error + startup
        return base
    base.ok = True
    if prov.uses_key:
        auth = "key accepted" if key else "no key configured; endpoint answered"
    else:
        auth = "local server, no key"
    served = (
        f"; server reports model {res.served_model!r}"
        if res.served_model and res.served_model not in (prov.model, "default_model")
        else ""
    )
    base.detail = auth + served + startup
    return base


async def ping_async(
    config: Any,
    roles: list[str] | None = None,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    retry: RetryPolicy | None = None,
) -> list[PingResult]:
    roles = list(roles or ROLES)
    for r in roles:
        config.role(r)  # unknown role -> ConfigError before any call
    retry = retry or RetryPolicy(max_retries=1, backoff_base=0.5, backoff_max=2.0, retry_after_max=5.0)
    seen: dict[tuple, PingResult] = {}
    results: list[PingResult] = []
    for role in roles:
        prov = config.role(role)
        ident = (prov.provider, id(prov)) if prov.offline else prov.endpoint_id()
        if ident in seen:
            first = seen[ident]
            results.append(
                PingResult(
                    role,
                    first.provider,
                    first.model,
                    first.ok,
                    first.latency_s,
                    f"same endpoint as {first.role}",
                    first.endpoint,
                )
            )
            continue
        res = await _ping_one(config, role, transport=transport, retry=retry)
        seen[ident] = res
        results.append(res)
    return results


def ping(
    config: Any,
    roles: list[str] | None = None,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    retry: RetryPolicy | None = None,
) -> list[PingResult]:
    """Ping the endpoints of ``roles`` (default: judge, teachers.short, teachers.long)."""
    return asyncio.run(ping_async(config, roles, transport=transport, retry=retry))


def format_ping(results: list[PingResult]) -> str:
    lines = []
    for r in results:
        status = "ok  " if r.ok else "FAIL"
        lat = f"{r.latency_s * 1000:.0f} ms" if r.latency_s is not None else "-"
        model = r.model or "-"
        lines.append(f"{status} {r.role:<15} {r.provider:<10} {model:<40} {lat:>8}  {r.detail}")
    return "\n".join(lines)
