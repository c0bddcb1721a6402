-- When the session's user last proved their password in it: the sign-in
-- that started it, or the latest reauthentication. Unix microseconds, UTC,
-- as in 00001; NULL when there was no such proof (anonymous sessions,
-- sessions an administrator created, and sessions created before this
-- migration, whose users reauthenticate before a sensitive action).

-- +goose Up
ALTER TABLE sessions ADD COLUMN authenticated_at INTEGER;

-- +goose Down
ALTER TABLE sessions DROP COLUMN authenticated_at;
