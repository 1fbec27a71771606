-- begin_command writes the operation's id with its idempotency key, in the key's INSERT,
-- before the operation's row (both in its one transaction) instead of linking them with an
-- UPDATE of the key afterwards: the reference is checked when the transaction commits. A
-- key refused (deleted) in the same transaction is not checked. Nothing else changes: every
-- committed key names an existing operation or none.
ALTER TABLE idempotency_keys ALTER CONSTRAINT idempotency_keys_operation_id_fkey DEFERRABLE INITIALLY DEFERRED;
