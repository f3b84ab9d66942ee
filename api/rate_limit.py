"""Per-API-key token buckets: in memory for one process, in Redis when several API processes share the limit.

A bucket holds `per_minute` tokens and refills continuously; each request takes one. An empty bucket answers
429 with `Retry-After`. If Redis is unreachable the limiter falls back to the in-process bucket rather than
refusing traffic: rate limiting must never become the reason the API is down.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from api.errors import ApiError

log = logging.getLogger(__name__)
Clock = Callable[[], float]


@dataclass(frozen=True)
class Decision:
    allowed: bool
    retry_after: float  # seconds until one token is available (0 when allowed)


class Bucket(Protocol):
    def take(self, key: str) -> Decision: ...


class MemoryBuckets:
    """Token buckets in this process; thread-safe (sync routes run in a thread pool)."""

    def __init__(self, per_minute: int, *, clock: Clock = time.monotonic, max_keys: int = 100_000) -> None:
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0
        self.clock = clock
        self.max_keys = max_keys
        self._state: dict[str, tuple[float, float]] = {}  # key -> (tokens, updated_at)
        self._lock = threading.Lock()

    def take(self, key: str) -> Decision:
        now = self.clock()
        with self._lock:
            tokens, updated = self._state.get(key, (self.capacity, now))
            tokens = min(self.capacity, tokens + (now - updated) * self.rate)
            if tokens >= 1.0:
                self._remember(key, (tokens - 1.0, now))
                return Decision(True, 0.0)
            self._remember(key, (tokens, now))
            return Decision(False, (1.0 - tokens) / self.rate)

    def _remember(self, key: str, state: tuple[float, float]) -> None:
        if key not in self._state and len(self._state) >= self.max_keys:
            self._state.clear()  # bounded memory; a full reset only ever grants more tokens
        self._state[key] = state


# Atomic refill-and-take on a Redis hash; the key expires once the bucket would be full again anyway.
_TAKE_SCRIPT = """
local capacity = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'updated')
local tokens = tonumber(state[1]) or capacity
local updated = tonumber(state[2]) or now
tokens = math.min(capacity, tokens + math.max(0, now - updated) * rate)
local allowed = 0
if tokens >= 1 then
  tokens = tokens - 1
  allowed = 1
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'updated', tostring(now))
redis.call('EXPIRE', KEYS[1], math.ceil(capacity / rate) + 1)
return {allowed, tostring(tokens)}
"""


class RedisBuckets:
    """Token buckets shared by every API process through Redis (server time, so clocks need not agree)."""

    def __init__(self, client: Any, per_minute: int, *, prefix: str = "skintrouble:ratelimit:") -> None:
        self.client = client
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0
        self.prefix = prefix
        self._script = client.register_script(_TAKE_SCRIPT)

    def take(self, key: str) -> Decision:
        allowed, tokens = self._script(keys=[self.prefix + key], args=[self.capacity, self.rate])
        if int(allowed):
            return Decision(True, 0.0)
        return Decision(False, (1.0 - float(tokens)) / self.rate)


class RateLimiter:
    """What `require_role` calls: `check(key_id)` returns or raises a 429 ApiError."""

    def __init__(
        self,
        primary: Bucket,
        fallback: MemoryBuckets | None = None,
        *,
        retry_seconds: float = 5.0,
        per_minute: int | None = None,
    ) -> None:
        self.primary = primary
        self.fallback = fallback
        self.retry_seconds = retry_seconds
        self.per_minute = per_minute if per_minute is not None else int(getattr(primary, "capacity", 0))
        self._primary_down_until = -math.inf
        self._warned_at = -math.inf

    def check(self, key_id: str, *, message: str = "Too many requests for this API key; slow down.") -> None:
        decision = self._take(key_id)
        if not decision.allowed:
            wait = max(1, math.ceil(decision.retry_after))
            raise ApiError(
                429, "rate_limited", message, extra={"retry_after": wait}, headers=self.limited_headers(wait)
            )

    def limited_headers(self, wait: int) -> dict[str, str]:
        """`Retry-After` plus the IETF RateLimit header fields (draft-ietf-httpapi-ratelimit-headers)."""
        return {
            "Retry-After": str(wait),
            "RateLimit-Limit": str(self.per_minute),
            "RateLimit-Remaining": "0",
            "RateLimit-Reset": str(wait),
            "RateLimit-Policy": f"{self.per_minute};w=60",
        }

    def _take(self, key_id: str) -> Decision:
        if self.fallback is not None and time.monotonic() < self._primary_down_until:
            return self.fallback.take(key_id)  # do not pay a failed connection on every request
        try:
            return self.primary.take(key_id)
        except Exception as exc:
            if self.fallback is None:
                raise
            now = time.monotonic()
            self._primary_down_until = now + self.retry_seconds
            if now - self._warned_at > 60:  # one line a minute, not one per request
                self._warned_at = now
                log.warning("shared rate limit unavailable (%s); limiting per process", type(exc).__name__)
            return self.fallback.take(key_id)


def build_rate_limiter(
    per_minute: int, redis_url: str | None, *, prefix: str = "skintrouble:ratelimit:"
) -> RateLimiter | None:
    """None when limiting is switched off (`per_minute <= 0`); Redis-backed when a Redis URL is configured."""
    if per_minute <= 0:
        return None
    local = MemoryBuckets(per_minute)
    if not redis_url:
        return RateLimiter(local, per_minute=per_minute)
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    client = redis.Redis.from_url(
        redis_url, socket_connect_timeout=0.5, socket_timeout=0.5, retry=Retry(NoBackoff(), 0)
    )
    return RateLimiter(RedisBuckets(client, per_minute, prefix=prefix), fallback=local, per_minute=per_minute)
