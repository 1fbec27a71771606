-- wrk script: GET with a bearer token. Environment: VPSGATE_DEMO_TOKEN, VPSGATE_BENCH_PATH.
local token = os.getenv("VPSGATE_DEMO_TOKEN") or ""
local path = os.getenv("VPSGATE_BENCH_PATH") or "/v1/operations"

function request()
  return wrk.format("GET", path, {["Authorization"] = "Bearer " .. token}, nil)
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("non-2xx or socket errors: %d\n", e.status + e.connect + e.read + e.write + e.timeout))
end
