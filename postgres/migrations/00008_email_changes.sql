-- Pending changes of users' email addresses. The confirmation token is
-- never stored: only its SHA-256. At most one per user in practice (a new
-- one replaces the others under the user's row lock). The same table as
-- SQLite's 00008.

-- +goose Up
CREATE TABLE email_changes (
    hash       bytea       NOT NULL PRIMARY KEY CHECK (octet_length(hash) = 32),
    user_id    text        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    new_email  text        NOT NULL,
    expires_at timestamptz NOT NULL
);

CREATE INDEX email_changes_user_id ON email_changes (user_id);

-- +goose Down
DROP TABLE email_changes;
