-- 0005_token_scopes: API tokens get scopes and an optional expiry (issue
-- 22). scopes is a comma-separated set of "post", "read" and "admin";
-- tokens made before this migration lose the account's administrator
-- power (they become "post,read"): an old bot token must no longer
-- download the backup. expires_at is Unix ms, NULL for a token that never
-- expires.
ALTER TABLE api_tokens ADD COLUMN scopes TEXT NOT NULL DEFAULT 'post,read';
ALTER TABLE api_tokens ADD COLUMN expires_at INTEGER;
