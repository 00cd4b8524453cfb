-- A billing run is a job (issue 14): POST /v1/runs records it `queued` and answers 202; a worker
-- of the service bills it (`running`, then `completed`, or `failed` with the reason). Its phase
-- and progress are committed apart from the run's own transaction, so a poller sees them.
ALTER TABLE runs ADD COLUMN accepted_at timestamptz NOT NULL DEFAULT clock_timestamp();
UPDATE runs SET accepted_at = started_at;
-- loading, amounts, checks, invoices, done (NULL while queued)
ALTER TABLE runs ADD COLUMN phase text;
-- contracts invoiced of the contracts the run bills (known once the amounts are computed)
ALTER TABLE runs ADD COLUMN progress_done integer NOT NULL DEFAULT 0;
ALTER TABLE runs ADD COLUMN progress_total integer;
-- how many times a worker began it: a run left `running` by a stopped process is begun again
-- (its work was one transaction, rolled back), up to a bound
ALTER TABLE runs ADD COLUMN attempts integer NOT NULL DEFAULT 0;
ALTER TABLE runs ADD COLUMN error text;
ALTER TABLE runs ADD COLUMN failed_at timestamptz;
-- the policy in force when the run was accepted, for whichever replica bills it (the blocking
-- rules are `blocking_rules`; the share paid of an unconfirmed month under `partial`, else NULL)
ALTER TABLE runs ADD COLUMN unconfirmed_share numeric(5,4);
-- the request that asked for the run: its events carry the request's correlation id
ALTER TABLE runs ADD COLUMN correlation_id text;
UPDATE runs SET phase = 'done', progress_done = invoices, progress_total = invoices
    WHERE status = 'completed';

-- A failed run billed nothing: the month may be run again, as a new run.
DROP INDEX runs_period_scope;
CREATE UNIQUE INDEX runs_period_scope ON runs (period, coalesce(region, ''))
    WHERE status <> 'failed';
-- the worker's queue, in the order runs were accepted
CREATE INDEX runs_unfinished ON runs (accepted_at) WHERE status IN ('queued', 'running');
