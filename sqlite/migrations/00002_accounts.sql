-- Accounts: users, their lockout state and password-reset tokens.
--
-- Times are INTEGER unix microseconds, UTC, as in 00001. A reset token is
-- never stored: only its SHA-256. The lockout state is three columns of
-- users (one row to read and write per failed login); a user whose state
-- was never written has zeros and NULL, the zero account.Lockout.

-- +goose Up
CREATE TABLE users (
    id                  TEXT    NOT NULL PRIMARY KEY,
    -- Normalised by account.Service; stored and matched exactly.
    email               TEXT    NOT NULL UNIQUE,
    password_hash       TEXT    NOT NULL,          -- a PHC string
    profile             TEXT    NOT NULL DEFAULT '{}', -- a JSON object
    created_at          INTEGER NOT NULL,
    updated_at          INTEGER NOT NULL,
    password_changed_at INTEGER,                   -- NULL: never set
    -- account.Lockout.
    failures            INTEGER NOT NULL DEFAULT 0,
    locks               INTEGER NOT NULL DEFAULT 0,
    locked_until        INTEGER                    -- NULL: not locked
) STRICT;

-- At most one per user in practice (a new one replaces the others), but
-- the schema does not insist: the store deletes them in the same
-- transaction.
CREATE TABLE reset_tokens (
    hash       BLOB    NOT NULL PRIMARY KEY CHECK (length(hash) = 32),
    user_id    TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    expires_at INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

-- Deleting a user's tokens, and the cascade from users.
CREATE INDEX reset_tokens_user_id ON reset_tokens (user_id);

-- +goose Down
DROP TABLE reset_tokens;
DROP TABLE users;
