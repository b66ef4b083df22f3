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
from app.remote import RemoteClient, RemoteFatalError, RetryPolicy

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


def _endpoint_id(prov: Any) -> tuple:
    if prov.provider == "openai":
        return ("openai", prov.base_url, prov.model, prov.api_key_env)
    if prov.provider == "mlx-server":
        return ("mlx-server", prov.model, prov.adapter)
    return (prov.provider, id(prov))


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
    server = None
    startup = ""
    try:
        if prov.provider == "openai":
            key = config.api_key(role)
            client = RemoteClient(prov, role, None, key, transport=transport, retry=retry, concurrency=1)
        else:
            from app.mlx_server import MlxServer

            server = MlxServer(prov.model, prov.adapter)
            t0 = time.perf_counter()
            await asyncio.to_thread(server.start)
            startup = f"; server started in {time.perf_counter() - t0:.1f}s"
            client = RemoteClient(
                prov, role, None, None, base_url=server.base_url, transport=transport, retry=retry, concurrency=1
            )
            key = None
        async with client:
            res = await client.chat(PING_MESSAGES, stage="ping", temperature=0.0, max_tokens=1, cache=False)
    except RemoteFatalError as e:
        base.detail = str(e)
        return base
    except TailorError as e:  # missing env var, server failed to start, ...
        base.detail = str(e)
        return base
    finally:
        if server is not None:
            server.stop()
    base.latency_s = res.latency_s
    if res.error:
        base.detail = res.error + startup
        return base
    base.ok = True
    if prov.provider == "openai":
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
        ident = _endpoint_id(config.role(role))
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
