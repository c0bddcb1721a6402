-- When the session's user last proved their password in it: the sign-in
-- that started it, or the latest reauthentication. NULL when there was no
-- such proof (anonymous sessions, sessions an administrator created, and
-- sessions created before this migration, whose users reauthenticate
-- before a sensitive action). The same column as SQLite's 00006 (this
-- backend has no 00005: SQLite's change log is its own).

-- +goose Up
ALTER TABLE sessions ADD COLUMN authenticated_at timestamptz;

-- +goose Down
ALTER TABLE sessions DROP COLUMN authenticated_at;
