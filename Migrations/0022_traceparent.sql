-- The request that made an operation or a batch, as W3C Trace Context names it: the
-- `traceparent` of its span in vpsgate (the caller's trace, or one vpsgate began). Background
-- work on it later (the reconciler's looks, the dispatch of an approved operation, a batch's
-- children, webhook deliveries) runs in traces of its own, each linked to this span
-- (docs/logs-and-metrics.md#traces). Ids only, nothing of the request; NULL for rows made
-- before this migration.
ALTER TABLE operations ADD COLUMN traceparent text
    CHECK (traceparent ~ '^00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$');

ALTER TABLE batches ADD COLUMN traceparent text
    CHECK (traceparent ~ '^00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$');
