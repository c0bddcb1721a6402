-- Pending changes of users' email addresses. The confirmation token is
-- never stored: only its SHA-256. At most one per user (a new one replaces
-- the others in the same transaction). Times are INTEGER unix
-- microseconds, UTC, as in 00001.

-- +goose Up
CREATE TABLE email_changes (
    hash       BLOB    NOT NULL PRIMARY KEY CHECK (length(hash) = 32),
    user_id    TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    new_email  TEXT    NOT NULL,
    expires_at INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

CREATE INDEX email_changes_user_id ON email_changes (user_id);

-- +goose Down
DROP TABLE email_changes;
