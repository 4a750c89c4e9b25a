-- What an API key may do: 'ingest' (post events only) or 'admin' (the whole API). Keys made
-- before scopes existed keep what they could do.
ALTER TABLE api_keys ADD COLUMN scope TEXT NOT NULL DEFAULT 'admin';
