-- When each webhook was last switched on (or created). A delivery a switched-off webhook held is
-- released at its acceptance time, so "late" counts from this moment at the earliest. Counting
-- from `updated_at` instead restarted a late webhook's clock at any edit, a rename included.
-- Existing rows start from their last change, the bound used until now.
ALTER TABLE webhooks ADD COLUMN enabled_at TEXT;
UPDATE webhooks SET enabled_at = updated_at;
