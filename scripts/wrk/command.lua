-- wrk script: the same command with a fresh Idempotency-Key on every request.
-- Environment: VPSGATE_DEMO_TOKEN (bearer token), VPSGATE_BENCH_PATH (default /v1/vps/1001/start).
local token = os.getenv("VPSGATE_DEMO_TOKEN") or ""
local path = os.getenv("VPSGATE_BENCH_PATH") or "/v1/vps/1001/start"
local counter = 0
local prefix = ""

function setup(thread)
  thread:set("prefix", string.format("wrk-%d-%d", os.time(), math.random(1, 1000000000)))
end

function init(args)
  prefix = prefix .. tostring(math.random(1, 1000000000))
end

function request()
  counter = counter + 1
  return wrk.format("POST", path, {
    ["Authorization"] = "Bearer " .. token,
    ["Idempotency-Key"] = prefix .. "-" .. counter,
  }, "")
end

local statuses = {}
function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
  io.write(string.format("non-2xx or socket errors: %d\n", summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
