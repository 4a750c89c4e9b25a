-- Why Herald turned a webhook off by itself (e.g. the endpoint answered 410 Gone); cleared when an
-- admin turns it on again. NULL for webhooks switched off by hand.
ALTER TABLE webhooks ADD COLUMN disabled_reason TEXT;
