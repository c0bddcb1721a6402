-- A short log of revoked and rotated sessions, written by triggers in the
-- same transaction as the change, so that other processes on the same file
-- (a second sessiond, the CLI) can drop their cached copies: Store.Listen
-- reads it. Rows older than a few minutes are pruned by the listener.

-- +goose Up
CREATE TABLE session_changes (
    seq        INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    session_id TEXT    NOT NULL,
    at         INTEGER NOT NULL            -- unix microseconds of the write
) STRICT;

CREATE INDEX session_changes_at ON session_changes (at);

-- +goose StatementBegin
CREATE TRIGGER sessions_revoked_change AFTER UPDATE OF revoked_at ON sessions
WHEN NEW.revoked_at IS NOT NULL AND OLD.revoked_at IS NULL
BEGIN
    INSERT INTO session_changes (session_id, at)
    VALUES (NEW.id, CAST(unixepoch('subsec') * 1000000 AS INTEGER));
END;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE TRIGGER sessions_rotated_change AFTER UPDATE OF token_hash ON sessions
WHEN NEW.token_hash <> OLD.token_hash
BEGIN
    INSERT INTO session_changes (session_id, at)
    VALUES (NEW.id, CAST(unixepoch('subsec') * 1000000 AS INTEGER));
END;
-- +goose StatementEnd

-- +goose Down
DROP TRIGGER sessions_rotated_change;
DROP TRIGGER sessions_revoked_change;
DROP TABLE session_changes;
