-- Sessions and their key/value data.
--
-- Times are timestamptz, which keeps microseconds: the precision the
-- Manager truncates to. A token is never stored: only token_hash, the
-- SHA-256 of its text. Later migrations come in files of their own with
-- higher numbers. Unqualified names: the tables go to the first schema of
-- the search_path, which postgres.WithSchema sets.

-- +goose Up
CREATE TABLE sessions (
    -- The Manager's ids are 32 hex characters; the bound keeps every id
    -- small enough for a change notification (see notify.go).
    id                  text        NOT NULL PRIMARY KEY
        CHECK (octet_length(id) BETWEEN 1 AND 255),
    token_hash          bytea       NOT NULL UNIQUE
        CHECK (octet_length(token_hash) = 32),
    user_id             text,       -- NULL for an anonymous session
    remember_me         boolean     NOT NULL DEFAULT false,
    created_at          timestamptz NOT NULL,
    last_seen_at        timestamptz NOT NULL,
    idle_expires_at     timestamptz NOT NULL,
    absolute_expires_at timestamptz NOT NULL,
    -- The earlier deadline: "active at t" is revoked_at IS NULL AND
    -- expires_at > t. Generated, so every write of either deadline keeps it
    -- right.
    expires_at          timestamptz NOT NULL
        GENERATED ALWAYS AS (least(idle_expires_at, absolute_expires_at)) STORED,
    user_agent          text        NOT NULL DEFAULT '',
    browser             text        NOT NULL DEFAULT '',
    os                  text        NOT NULL DEFAULT '',
    ip                  text        NOT NULL DEFAULT '',
    revoked_at          timestamptz, -- NULL while not revoked
    revoke_reason       text        NOT NULL DEFAULT ''
);

-- Listing a user's sessions, most recently used first (id breaks ties, so
-- the index gives the whole order), the per-user limit and RevokeByUser.
-- Anonymous sessions (user_id NULL) are left out of the index.
CREATE INDEX sessions_user_last_seen ON sessions (user_id, last_seen_at DESC, id DESC)
    WHERE user_id IS NOT NULL;

-- The sweep: the oldest deadlines first, WHERE expires_at <= now.
CREATE INDEX sessions_expires_at ON sessions (expires_at);

-- One row per key, so writes to different keys never lose each other.
CREATE TABLE session_data (
    session_id text  NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    key        text  NOT NULL,
    value      bytea NOT NULL,
    PRIMARY KEY (session_id, key)
);

-- +goose Down
DROP TABLE session_data;
DROP TABLE sessions;
