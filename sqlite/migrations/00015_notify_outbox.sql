-- The queue of security notifications (package notify, delivered by a
-- webhook.Dispatcher): one row per message, written by sessiond before it
-- answers the request that caused it, so that a message is never lost to a
-- flood or a crash. The columns are webhook_outbox's (00009), and the
-- claims, retries and dead letters are the same code. data is the whole
-- notify.Message as JSON, or, with a key-encryption key configured, a JSON
-- string holding it sealed (it may carry an email-change or reset token).
-- A delivered row is deleted at once; a dead row keeps its metadata but
-- loses its data.

-- +goose Up
CREATE TABLE notify_outbox (
    seq             INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    id              TEXT    NOT NULL UNIQUE,   -- the message id, 32 hex characters
    type            TEXT    NOT NULL,          -- password_reset, ...
    data            TEXT    NOT NULL,
    created_at      INTEGER NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL DEFAULT 0,
    delivered_at    INTEGER,
    dead_at         INTEGER,
    last_error      TEXT    NOT NULL DEFAULT ''
) STRICT;

CREATE INDEX notify_outbox_due ON notify_outbox (next_attempt_at)
    WHERE delivered_at IS NULL AND dead_at IS NULL;

-- +goose Down
DROP TABLE notify_outbox;
