-- Per command and day: operations, how many failed, and the 95th percentile of their duration.
CREATE OR REPLACE VIEW command_daily_stats AS
SELECT date_trunc('day', created_at) AS day, command,
       count(*) AS operations,
       count(*) FILTER (WHERE state = 'failed') AS failed,
       round(count(*) FILTER (WHERE state = 'failed')::numeric / count(*), 4) AS failure_rate,
       percentile_cont(0.95) WITHIN GROUP (ORDER BY extract(epoch FROM completed_at - created_at)) AS p95_seconds
FROM operations
WHERE state IN ('succeeded', 'failed')
GROUP BY 1, 2;

GRANT SELECT ON command_daily_stats TO vpsgate_auditor;
