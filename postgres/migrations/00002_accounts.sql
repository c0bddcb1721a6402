-- Accounts: users, their lockout state and password-reset tokens.
--
-- A reset token is never stored: only its SHA-256. The lockout state is
-- three columns of users (one row to lock and write per failed login); a
-- user whose state was never written has zeros and NULL, the zero
-- account.Lockout. The profile is bytea: the store keeps the bytes it is
-- given (compact JSON from account.Service), exactly.

-- +goose Up
CREATE TABLE users (
    id                  text        NOT NULL PRIMARY KEY,
    -- Normalised by account.Service; stored and matched exactly. The
    -- constraint's name is how the store tells a taken email from a
    -- duplicate id.
    email               text        NOT NULL CONSTRAINT users_email_key UNIQUE,
    password_hash       text        NOT NULL,               -- a PHC string
    profile             bytea       NOT NULL DEFAULT '\x7b7d', -- a JSON object, '{}'
    created_at          timestamptz NOT NULL,
    updated_at          timestamptz NOT NULL,
    password_changed_at timestamptz,                        -- NULL: never set
    -- account.Lockout.
    failures            integer     NOT NULL DEFAULT 0,
    locks               integer     NOT NULL DEFAULT 0,
    locked_until        timestamptz                         -- NULL: not locked
);

-- At most one per user in practice (a new one replaces the others, under
-- the user's row lock), but the schema does not insist.
CREATE TABLE reset_tokens (
    hash       bytea       NOT NULL PRIMARY KEY CHECK (octet_length(hash) = 32),
    user_id    text        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    expires_at timestamptz NOT NULL
);

-- Deleting a user's tokens, and the cascade from users.
CREATE INDEX reset_tokens_user_id ON reset_tokens (user_id);

-- +goose Down
DROP TABLE reset_tokens;
DROP TABLE users;
