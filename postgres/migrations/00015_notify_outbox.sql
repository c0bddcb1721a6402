-- The queue of security notifications (package notify, delivered by a
-- webhook.Dispatcher): one row per message, written by sessiond before it
-- answers the request that caused it. The columns are webhook_outbox's
-- (00009), and the claims (FOR UPDATE SKIP LOCKED), retries and dead
-- letters are the same code. data is the whole notify.Message, or, with a
-- key-encryption key configured, a JSON string holding it sealed. A
-- delivered row is deleted at once; a dead row loses its data. The same
-- table as SQLite's 00014.

-- +goose Up
CREATE TABLE notify_outbox (
    seq             bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id              text        NOT NULL UNIQUE,
    type            text        NOT NULL,
    data            jsonb       NOT NULL,
    created_at      timestamptz NOT NULL,
    attempts        integer     NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT '-infinity',
    delivered_at    timestamptz,
    dead_at         timestamptz,
    last_error      text        NOT NULL DEFAULT ''
);

CREATE INDEX notify_outbox_due ON notify_outbox (next_attempt_at)
    WHERE delivered_at IS NULL AND dead_at IS NULL;

-- +goose Down
DROP TABLE notify_outbox;
