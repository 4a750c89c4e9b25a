-- The current run of failed live attempts, for switching off a webhook that has failed every try
-- for a long time: when the run began (NULL after a success) and how many tries it holds.
ALTER TABLE webhooks ADD COLUMN failing_since TEXT;
ALTER TABLE webhooks ADD COLUMN failures_in_a_row BIGINT NOT NULL DEFAULT 0;
