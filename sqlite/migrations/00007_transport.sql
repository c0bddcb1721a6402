-- How the session's first token was handed out: 'cookie', 'token', 'jwt'
-- or 'jwt_cookie'. Sessions handed out in a cookie are bound to the
-- browser that started them (hijack signals); '' for sessions created
-- before this migration, which are not.

-- +goose Up
ALTER TABLE sessions ADD COLUMN transport TEXT NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE sessions DROP COLUMN transport;
