-- Custom headers sent with every request of a webhook: [{"name", "value"?, "secret"?}]. A secret
-- header's value is not here: it is sealed with the webhook's other secrets (`secrets`).
ALTER TABLE webhooks ADD COLUMN headers JSONB NOT NULL DEFAULT '[]'::jsonb;
