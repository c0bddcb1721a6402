-- How the session's first token was handed out: 'cookie', 'token', 'jwt'
-- or 'jwt_cookie'. Sessions handed out in a cookie are bound to the
-- browser that started them (hijack signals); '' for sessions created
-- before this migration, which are not. The same column as SQLite's 00007.

-- +goose Up
ALTER TABLE sessions ADD COLUMN transport text NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE sessions DROP COLUMN transport;
