-- A 429's pause capped, and lifted by an operator; freezes that hold a firewall change
-- reaching a frozen VPS. (The event feed's lag needs nothing here: vpsgate reads it from
-- `events` and `pg_current_snapshot()` at scrape time.)
--
-- Decisions, each in one function: pause_budget (now capped: at most p_max, never more than
-- an hour, whoever writes it), vpsgate_resource_command_decision (a freeze on any VPS the
-- command reaches holds it), begin_command (reads what the call reaches from its request).

-- MARK: The pause of a 429, capped

-- A Retry-After of a day paused every instance for a day. Now each pause is capped at
-- p_max (VPSGATE_BUDGET_MAX_PAUSE, 15 minutes by default) and, whatever an instance asks,
-- at an hour. A longer pause still never shortens one already there.
CREATE OR REPLACE FUNCTION pause_budget(p_name text, p_until timestamptz, p_max interval) RETURNS void LANGUAGE sql AS $$
    INSERT INTO upstream_budgets AS b (name, next_at, paused_until, paused)
    VALUES (p_name, clock_timestamp() - interval '1 hour',
            least(p_until, clock_timestamp() + least(coalesce(p_max, interval '15 minutes'), interval '1 hour')), 1)
    ON CONFLICT (name) DO UPDATE SET paused_until = greatest(b.paused_until, EXCLUDED.paused_until), paused = b.paused + 1
$$;

GRANT EXECUTE ON FUNCTION pause_budget(text,timestamp with time zone,interval) TO vpsgate_app;
