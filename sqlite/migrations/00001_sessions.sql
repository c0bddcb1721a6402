-- Sessions and their key/value data.
--
-- Times are INTEGER unix microseconds, UTC. A token is never stored: only
-- token_hash, the SHA-256 of its text. Later migrations (users, ...) come in
-- files of their own with higher numbers.

-- +goose Up
CREATE TABLE sessions (
    id                  TEXT    NOT NULL PRIMARY KEY,
    token_hash          BLOB    NOT NULL UNIQUE CHECK (length(token_hash) = 32),
    user_id             TEXT,   -- NULL for an anonymous session
    remember_me         INTEGER NOT NULL DEFAULT 0 CHECK (remember_me IN (0, 1)),
    created_at          INTEGER NOT NULL,
    last_seen_at        INTEGER NOT NULL,
    idle_expires_at     INTEGER NOT NULL,
    absolute_expires_at INTEGER NOT NULL,
    -- The earlier deadline, for the sweep. Generated, so every write of
    -- either deadline keeps it right.
    expires_at          INTEGER NOT NULL
        GENERATED ALWAYS AS (min(idle_expires_at, absolute_expires_at)) STORED,
    user_agent          TEXT    NOT NULL DEFAULT '',
    browser             TEXT    NOT NULL DEFAULT '',
    os                  TEXT    NOT NULL DEFAULT '',
    ip                  TEXT    NOT NULL DEFAULT '',
    revoked_at          INTEGER, -- NULL while not revoked
    revoke_reason       TEXT    NOT NULL DEFAULT ''
) STRICT;

-- Listing a user's sessions, most recently used first, and the per-user
-- limit. Anonymous sessions (user_id NULL) are left out of the index.
CREATE INDEX sessions_user_last_seen ON sessions (user_id, last_seen_at)
    WHERE user_id IS NOT NULL;

-- The sweep: DELETE ... WHERE expires_at <= now.
CREATE INDEX sessions_expires_at ON sessions (expires_at);

-- One row per key, so writes to different keys never lose each other.
CREATE TABLE session_data (
    session_id TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    key        TEXT NOT NULL,
    value      BLOB NOT NULL,
    PRIMARY KEY (session_id, key)
) STRICT, WITHOUT ROWID;

-- +goose Down
DROP TABLE session_data;
DROP TABLE sessions;
