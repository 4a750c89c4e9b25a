-- The authentication method's one public parameter: the Basic user name, or the header an `hmac`
-- webhook carries its hex signature in.
ALTER TABLE webhooks RENAME COLUMN auth_username TO auth_param;
