-- wrk script: the same command with the same Idempotency-Key every time (replays).
-- Environment: VPSGATE_DEMO_TOKEN, VPSGATE_BENCH_PATH, VPSGATE_BENCH_KEY.
local token = os.getenv("VPSGATE_DEMO_TOKEN") or ""
local path = os.getenv("VPSGATE_BENCH_PATH") or "/v1/vps/1001/start"
local key = os.getenv("VPSGATE_BENCH_KEY") or "bench-replay-key"

function request()
  return wrk.format("POST", path, {["Authorization"] = "Bearer " .. token, ["Idempotency-Key"] = key}, "")
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("non-2xx or socket errors: %d\n", e.status + e.connect + e.read + e.write + e.timeout))
end
