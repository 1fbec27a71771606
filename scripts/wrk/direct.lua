-- wrk script: the Hostinger call straight to hostinger-sim (what a client bypassing vpsgate pays).
-- Environment: HOSTINGER_SIM_TOKEN, VPSGATE_BENCH_PATH (default the start of VM 1001).
local token = os.getenv("HOSTINGER_SIM_TOKEN") or ""
local path = os.getenv("VPSGATE_BENCH_PATH") or "/api/vps/v1/virtual-machines/1001/start"

function request()
  return wrk.format("POST", path, {["Authorization"] = "Bearer " .. token, ["User-Agent"] = "vpsgate-bench",
                                   ["Accept"] = "application/json"}, "")
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("non-2xx or socket errors: %d\n", e.status + e.connect + e.read + e.write + e.timeout))
end
