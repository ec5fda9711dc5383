"""A rate limiter shared by every worker of a deployment.

Rules come as `5/s;10000/d`. The finest rule of a minute or less is enforced as strict spacing
(GCRA with a burst of one): sends are `period/limit` apart, widened by `RATE_LIMIT_MARGIN` so that
the jitter between a slot and the moment the provider sees the message can never put one send too
many into any one-`period` window. Longer rules (`10000/d`) are quotas over a sliding window kept in
60 buckets and counted conservatively, so they never allow more than `limit` in any window.

Callers *reserve* slots: up to `n` send times, evenly spaced, all within `horizon` seconds of now.
One round trip reserves a whole batch; the caller sends each message at its slot and gives up the
rest of its slots if it falls behind (see `Reservation.is_late`). The Redis backend runs one Lua
script that reads Redis's own clock (`TIME`), so all workers share one clock.
"""

from __future__ import annotations

import math
import re
import time
from dataclasses import dataclass, field

import redis

from .exceptions import RateLimiterUnavailable

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_RULE = re.compile(r"^\s*(\d+)\s*/\s*(\d*)\s*([smhd])\w*\s*$")
SPACING_MAX_PERIOD = 60.0
WINDOW_BUCKETS = 60


@dataclass(frozen=True)
class Rule:
    limit: int
    period: float

    def __str__(self) -> str:
        return f"{self.limit}/{self.period:g}s"


def parse_rules(text: str) -> list[Rule]:
    """Parse `5/s;10000/d` (also `100/10s`, `30/minute`); raise ValueError if malformed."""
    rules = []
    for part in filter(None, (p.strip() for p in text.split(";"))):
        match = _RULE.match(part)
        if not match or int(match.group(1)) <= 0:
            raise ValueError(f"invalid rate limit {part!r}: expected N/s, N/m, N/h or N/d")
        count = int(match.group(2) or 1)
        rules.append(Rule(int(match.group(1)), count * _UNITS[match.group(3)]))
    if not rules:
        raise ValueError("a rate limit needs at least one rule such as 5/s")
    return sorted(rules, key=lambda rule: rule.period)


@dataclass
class Plan:
    """The rules in the form both backends evaluate: one spacing interval plus window quotas."""

    interval: float  # seconds between two sends; 0 when no rule is fine enough to space sends
    windows: list[Rule] = field(default_factory=list)
    lateness: float = 0.0  # how late a send may start after its slot

    @classmethod
    def from_rules(cls, rules: list[Rule], margin: float) -> Plan:
        finest = rules[0]
        if finest.period > SPACING_MAX_PERIOD:
            return cls(interval=0.0, windows=list(rules), lateness=math.inf)
        return cls(
            interval=finest.period / finest.limit * (1 + margin),
            windows=list(rules[1:]),
            # A quarter of the margin for starting late, the rest for the network's jitter.
            lateness=finest.period * margin / 4,
        )


@dataclass
class Reservation:
    """Granted send times as local `time.monotonic()` values; `wait` when none was granted."""

    slots: list[float]
    wait: float
    lateness: float

    def is_late(self, slot: float) -> bool:
        return time.monotonic() - slot > self.lateness


_US = 1_000_000

# KEYS: spacing key, pause key, one hash per window rule.
# ARGV: n, horizon_us, all_or_nothing, interval_us, then (limit, period_us) per window rule.
# Returns {granted, first_slot_offset_us, wait_us}.
_RESERVE_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local n = tonumber(ARGV[1])
local horizon = tonumber(ARGV[2])
local all_or_nothing = ARGV[3] == '1'
local interval = tonumber(ARGV[4])
local paused = tonumber(redis.call('GET', KEYS[2]) or '0')
if paused > now then
  return {0, 0, paused - now}
end
local first = now
if interval > 0 then
  first = math.max(now, tonumber(redis.call('GET', KEYS[1]) or '0'))
end
local granted = n
if interval > 0 then
  granted = math.min(n, math.ceil((now + horizon - first) / interval))
end
local wait = 0
if granted < 1 then
  granted = 0
  wait = first - now - horizon + 1
end
local windows = {}
for i = 3, #KEYS do
  local limit = tonumber(ARGV[3 + (i - 2) * 2])
  local period = tonumber(ARGV[4 + (i - 2) * 2])
  local bucket = math.floor(period / 60)
  local oldest = math.floor((now - period) / bucket)
  local counts = redis.call('HGETALL', KEYS[i])
  local used = 0
  local first_full = nil
  for j = 1, #counts, 2 do
    local index = tonumber(counts[j])
    if index < oldest then
      redis.call('HDEL', KEYS[i], counts[j])
    else
      used = used + tonumber(counts[j + 1])
      if first_full == nil or index < first_full then first_full = index end
    end
  end
  local free = limit - used
  if free < granted then
    granted = math.max(free, 0)
    if granted == 0 then
      wait = math.max(wait, (first_full + 1) * bucket + period - now)
    end
  end
  windows[#windows + 1] = {KEYS[i], bucket, period}
end
if granted == 0 or (all_or_nothing and granted < n) then
  if wait == 0 then wait = math.max(first - now, 1000) end
  return {0, first - now, wait}
end
if interval > 0 then
  local tat = first + granted * interval
  redis.call('SET', KEYS[1], string.format('%.0f', tat), 'PX', math.ceil((tat - now) / 1000) + 1000)
end
for _, w in ipairs(windows) do
  for s = 0, granted - 1 do
    local index = math.floor((first + s * interval) / w[2])
    redis.call('HINCRBY', w[1], string.format('%.0f', index), 1)
  end
  redis.call('PEXPIRE', w[1], math.ceil((w[3] + w[2]) / 1000))
end
return {granted, first - now, 0}
"""


_PAUSE_LUA = """
local t = redis.call('TIME')
local until_us = tonumber(t[1]) * 1000000 + tonumber(t[2]) + tonumber(ARGV[1])
if until_us > tonumber(redis.call('GET', KEYS[1]) or '0') then
  local ttl = math.ceil(ARGV[1] / 1000) + 1000
  redis.call('SET', KEYS[1], string.format('%.0f', until_us), 'PX', ttl)
end
"""


class RateLimiter:
    """The limiter of one channel and provider (`key`), its state shared in Redis."""

    def __init__(self, key: str, rules: list[Rule], client: redis.Redis, margin: float = 0.05):
        self.key = key
        self.rules = rules
        self.plan = Plan.from_rules(rules, margin)
        self.client = client
        self._reserve = client.register_script(_RESERVE_LUA)
        self._pause = client.register_script(_PAUSE_LUA)

    def reserve(self, n: int, *, horizon: float, all_or_nothing: bool = False) -> Reservation:
        """Reserve up to `n` send slots that start within `horizon` seconds.

        With `all_or_nothing`, grant either all `n` or none. Raises RateLimiterUnavailable when
        Redis cannot be reached: nothing may then be sent.
        """
        plan = self.plan
        keys = [
            f"{self.key}:tat",
            f"{self.key}:pause",
            *(f"{self.key}:w:{r}" for r in plan.windows),
        ]
        args: list[int] = [
            n,
            int(horizon * _US),
            int(all_or_nothing),
            int(plan.interval * _US),
        ]
        for rule in plan.windows:
            args += [rule.limit, int(rule.period * _US)]
        started = time.monotonic()
        try:
            granted, first, wait = self._reserve(keys=keys, args=args)
        except redis.RedisError as err:
            raise RateLimiterUnavailable(str(err)) from err
        start = started + int(first) / _US
        slots = [start + i * plan.interval for i in range(int(granted))]
        return Reservation(slots=slots, wait=int(wait) / _US, lateness=plan.lateness)

    def pause(self, seconds: float) -> None:
        """Grant nothing for `seconds`: a provider throttled us (429, `Retry-After`)."""
        try:
            self._pause(keys=[f"{self.key}:pause"], args=[int(seconds * _US)])
        except redis.RedisError as err:
            raise RateLimiterUnavailable(str(err)) from err
