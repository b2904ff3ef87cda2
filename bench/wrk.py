"""Load from wrk (Debian's ``wrk``, a compiled HTTP load generator), for the bench scripts.

A Python client saturates before one server process does on a 2-core machine, so the figures of
requests per second come from wrk. ``run_wrk`` drives it over a list of paths (each request takes
one at random, from a fixed seed per thread), with optional headers, and returns what it measured:
requests per second, latency percentiles, and the requests that failed (connection errors,
timeouts and answers outside 2xx/3xx).

    from bench.wrk import run_wrk
    r = run_wrk("http://127.0.0.1:8000", ["/ogc/collections", "/health"], seconds=10)
    print(r.rps, r.p95_ms)
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

LUA = r"""
local paths = {%(paths)s}
local headers = %(headers)s
local counter = 0
function setup(thread)
  counter = counter + 1
  thread:set("seed", counter)
end
function init(args)
  math.randomseed(seed or 1)
  for k, v in pairs(headers) do wrk.headers[k] = v end
end
function request()
  return wrk.format("GET", paths[math.random(#paths)])
end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '\nWRK-JSON {"requests": %%d, "seconds": %%f, "p50": %%d, "p95": %%d, "p99": %%d, "mean": %%f,'
    .. ' "connect": %%d, "read": %%d, "write": %%d, "status": %%d, "timeout": %%d}\n',
    summary.requests, summary.duration / 1e6, latency:percentile(50), latency:percentile(95),
    latency:percentile(99), latency.mean, e.connect, e.read, e.write, e.status, e.timeout))
end
"""


@dataclass
class WrkResult:
    requests: int
    seconds: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    errors: int  # connection errors, timeouts, answers other than 2xx/3xx

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


def _lua_string(s: str) -> str:
    return json.dumps(s)  # a JSON string is a valid Lua string literal for what we send (ASCII paths)


def run_wrk(base: str, paths: list[str], *, seconds: float = 10, connections: int = 8, threads: int = 2,
            headers: dict[str, str] | None = None, timeout_s: int = 30) -> WrkResult:
    """Run wrk against ``base`` over ``paths`` for ``seconds``; raise when wrk is missing or fails."""
    wrk = shutil.which("wrk")
    if wrk is None:
        raise RuntimeError("wrk is not installed: apt-get install -y wrk (make bench does it)")
    if not paths or any(not p.startswith("/") or not p.isascii() for p in paths):
        raise ValueError("paths must be non-empty, ASCII and start with /")
    headers = {"Accept-Encoding": "gzip", **(headers or {})}
    lua = LUA % {
        "paths": ", ".join(_lua_string(p) for p in paths),
        "headers": "{" + ", ".join(f"[{_lua_string(k)}] = {_lua_string(v)}" for k, v in headers.items()) + "}",
    }
    with tempfile.TemporaryDirectory(prefix="cm-wrk-") as tmp:
        script = Path(tmp) / "paths.lua"
        script.write_text(lua)
        out = subprocess.run(
            [wrk, f"-t{threads}", f"-c{connections}", f"-d{max(1, round(seconds))}s", f"--timeout={timeout_s}s",
             "-s", str(script), base.rstrip("/") + paths[0]],
            capture_output=True, text=True, timeout=seconds + timeout_s + 60)
    line = next((ln for ln in out.stdout.splitlines() if ln.startswith("WRK-JSON ")), None)
    if out.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({out.returncode}): {out.stderr.strip() or out.stdout.strip()}")
    d = json.loads(line.removeprefix("WRK-JSON "))
    errors = d["connect"] + d["read"] + d["write"] + d["status"] + d["timeout"]
    return WrkResult(requests=d["requests"], seconds=d["seconds"], p50_ms=d["p50"] / 1000,
                     p95_ms=d["p95"] / 1000, p99_ms=d["p99"] / 1000, errors=errors)
