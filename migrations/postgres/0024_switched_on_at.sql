-- When each webhook was last switched on (or created). A delivery a switched-off webhook held is
-- released at its acceptance time, so "late" counts from this moment at the earliest. Counting
-- from `updated_at` instead restarted a late webhook's clock at any edit, a rename included.
-- Existing rows start from their last change, the bound used until now. The default serves a
-- process of the previous version still running beside a new one (it does not name the column).
ALTER TABLE webhooks ADD COLUMN enabled_at TIMESTAMPTZ NOT NULL DEFAULT now();
UPDATE webhooks SET enabled_at = updated_at;
