-- Attempts of a repeat-safe command whose answer may hide a mutation Hostinger performed (a
-- 5xx, or no answer after sending) and that the operation's outcome does not account for
-- (the call went on to another attempt, or the operation was recorded failed). Written
-- with the command's outcome (finish_command's statement). Hostinger may hold an action
-- from such an attempt that no operation holds: when another operation of the VPS loses
-- its answer, the reconciler ties such an action to the attempt that explains it (a name
-- the attempt's command produces, created within its window) instead of counting it as
-- evidence against a not-applied verdict (docs/architecture.md, the lost-answer rules).
-- An attempt leaves at most one action, and an action is tied to at most one attempt.
CREATE TABLE operation_stray_attempts (
    operation_id        uuid NOT NULL REFERENCES operations (id),
    attempt             integer NOT NULL CHECK (attempt > 0),
    vps_id              bigint NOT NULL,
    -- vpsgate's record of when the attempt was sent and ended (the database's clock).
    started_at          timestamptz NOT NULL,
    ended_at            timestamptz NOT NULL CHECK (ended_at >= started_at),
    -- The action names the operation's command produces (ActionMatcher.expectedNames).
    action_names        text[] NOT NULL,
    -- The action tied to it, once a reconciliation has.
    hostinger_action_id bigint UNIQUE,
    attributed_at       timestamptz,
    PRIMARY KEY (operation_id, attempt)
);

CREATE INDEX operation_stray_attempts_vps_time ON operation_stray_attempts (vps_id, ended_at);

GRANT SELECT, INSERT, UPDATE ON operation_stray_attempts TO vpsgate_app;
