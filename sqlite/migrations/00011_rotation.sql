-- The last replacement of a session's token, written by the same UPDATE
-- as the replacement: rotated_at (Unix microseconds, NULL when never) and
-- prev_token_hash, the hash of the token a rotation replaced (NULL when
-- none, and after a reauthentication, which starts a new chain). The
-- refresh grace window and the immediate predecessor of a refresh token
-- are decided from them. Forward-only: older sessiond versions ignore
-- the columns.

-- +goose Up
ALTER TABLE sessions ADD COLUMN rotated_at INTEGER;
ALTER TABLE sessions ADD COLUMN prev_token_hash BLOB;
