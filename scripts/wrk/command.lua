-- wrk script: a command with a fresh Idempotency-Key on every request, spread over VPS
-- so that no two requests in flight target the same VPS (one operation per VPS at a time).
-- Environment: VPSGATE_DEMO_TOKEN (bearer token); VPSGATE_BENCH_VPS_FIRST and
-- VPSGATE_BENCH_VPS_COUNT (default 1001 and 1: every request on VPS 1001);
-- VPSGATE_BENCH_VERB (default start); VPSGATE_BENCH_THREADS (wrk's -t, default 1).
-- Each thread cycles over its own share of the VPS.
local token = os.getenv("VPSGATE_DEMO_TOKEN") or ""
local first = tonumber(os.getenv("VPSGATE_BENCH_VPS_FIRST") or "1001")
local count = tonumber(os.getenv("VPSGATE_BENCH_VPS_COUNT") or "1")
local verb = os.getenv("VPSGATE_BENCH_VERB") or "start"
local threads = 0
local counter = 0

function setup(thread)
  thread:set("index", threads)
  thread:set("prefix", string.format("wrk-%d-%d-%d", os.time(), math.random(1, 1000000000), threads))
  threads = threads + 1
end

function request()
  counter = counter + 1
  local per_thread = math.max(math.floor(count / threads_total()), 1)
  local vps = first + (index * per_thread + counter % per_thread) % count
  return wrk.format("POST", "/v1/vps/" .. vps .. "/" .. verb, {
    ["Authorization"] = "Bearer " .. token,
    ["Idempotency-Key"] = prefix .. "-" .. counter,
  }, "")
end

function threads_total()
  return tonumber(os.getenv("VPSGATE_BENCH_THREADS") or "1")
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("non-2xx or socket errors: %d\n", e.status + e.connect + e.read + e.write + e.timeout))
end
