-- Why a command was asked for: the Vpsgate-Reason header (1 to 500 characters, no control
-- characters; vpsgate checks it before anything is kept). Kept on the operation or batch it
-- made, on the request's audit rows (sealed with them) and shown to approvers. A policy may
-- require one: a command it covers without a reason is refused before anything is spent.
ALTER TABLE operations ADD COLUMN reason text CHECK (char_length(reason) BETWEEN 1 AND 500);

ALTER TABLE batches ADD COLUMN reason text CHECK (char_length(reason) BETWEEN 1 AND 500);

ALTER TABLE audit_events ADD COLUMN reason text;

GRANT INSERT (reason) ON audit_events TO vpsgate_app;

ALTER TABLE approval_policies ADD COLUMN require_reason boolean NOT NULL DEFAULT false;
