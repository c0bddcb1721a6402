-- The last replacement of a session's token, written by the same UPDATE
-- as the replacement: rotated_at (NULL when never) and prev_token_hash,
-- the hash of the token a rotation replaced (NULL when none, and after a
-- reauthentication, which starts a new chain). The same columns as
-- SQLite's 00011. Forward-only: older sessiond versions ignore them.

-- +goose Up
ALTER TABLE sessions ADD COLUMN rotated_at timestamptz;
ALTER TABLE sessions ADD COLUMN prev_token_hash bytea;
