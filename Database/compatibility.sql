-- Compatibility: the one place for function signatures kept only for the release before.
--
-- During a rolling upgrade `vpsgate migrate` runs first, then instances are replaced one at
-- a time: for a while instances of the previous release call the functions of the new
-- schema. So a release that changes a function's signature (adds, removes or retypes an
-- argument, or renames it) keeps the previous release's signature here, as a thin wrapper
-- that calls the new function, and the release after drops the wrapper from this file. A
-- function the previous release calls with an unchanged signature needs nothing here.
-- Nothing else keeps an old signature alive: the migrator drops every function that no
-- Database/ file defines (docs/deployment.md, "Rolling upgrades and the database").
--
-- Today: the previous release (the one that shipped migrations 0001..0016) calls, from
-- Sources/VpsgateStore, begin_command with 18 arguments, finish_command with 15,
-- read_events with 7, vpsgate_resource_command_decision with 11 and pause_budget with 3,
-- all as defined in their own files now; so no wrapper is needed. The older overloads
-- those migrations left behind (begin_command with 9, 10, 11 and 15 arguments,
-- finish_command with 14 (its body is now the 15-argument one's), read_events with 6, vpsgate_emit with 5,
-- vpsgate_resource_command_decision with 10, pause_budget with 2) and
-- vpsgate_command_decision were called by no release since 0012 or later, and are dropped.
--
-- Since: advance_batch takes the batch retry rule as arguments; the previous release's
-- two-argument call is kept below.

-- advance_batch(text, interval): the previous release's signature, before the retry rule was
-- passed in. Its values then: four attempts, after a failure that never reached Hostinger.
-- Drop in the release after this one.
CREATE OR REPLACE FUNCTION advance_batch(p_owner text, p_lease interval) RETURNS bigint LANGUAGE sql AS $$
    SELECT advance_batch(p_owner, p_lease, 4, ARRAY['not_applied', 'upstream_budget', 'not_sent'])
$$;
GRANT EXECUTE ON FUNCTION advance_batch(text, interval) TO vpsgate_app;
