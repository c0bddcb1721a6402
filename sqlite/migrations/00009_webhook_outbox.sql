-- The outbox of lifecycle webhooks (package webhook): one row per event,
-- written by the triggers below in the same transaction as the change it
-- describes, so that a committed change always has its event. A dispatcher
-- reads due rows, POSTs them and records the outcome. Times are INTEGER
-- unix microseconds, UTC, as in 00001. The triggers write only while
-- webhook_state.enabled is 1, which a server configured with a webhook
-- URL sets when it starts.

-- +goose Up
CREATE TABLE webhook_state (
    id      INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
    enabled INTEGER NOT NULL DEFAULT 0 CHECK (enabled IN (0, 1))
) STRICT;
INSERT INTO webhook_state (id, enabled) VALUES (1, 0);

CREATE TABLE webhook_outbox (
    seq             INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    id              TEXT    NOT NULL UNIQUE,   -- 32 hex characters
    type            TEXT    NOT NULL,          -- session.created, ...
    data            TEXT    NOT NULL,          -- a JSON object
    created_at      INTEGER NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL DEFAULT 0, -- due when at or before now; a claim leases it forward
    delivered_at    INTEGER,                   -- NULL until a 2xx answer
    dead_at         INTEGER,                   -- NULL unless given up
    last_error      TEXT    NOT NULL DEFAULT ''
) STRICT;

-- The dispatcher's read: pending rows by due time.
CREATE INDEX webhook_outbox_due ON webhook_outbox (next_attempt_at)
    WHERE delivered_at IS NULL AND dead_at IS NULL;

-- +goose StatementBegin
CREATE TRIGGER webhook_session_created AFTER INSERT ON sessions
WHEN NEW.user_id IS NOT NULL AND (SELECT enabled FROM webhook_state WHERE id = 1) = 1
BEGIN
    INSERT INTO webhook_outbox (id, type, data, created_at)
    VALUES (lower(hex(randomblob(16))), 'session.created',
        json_object('session_id', NEW.id, 'user_id', NEW.user_id,
            'remember_me', json(CASE NEW.remember_me WHEN 1 THEN 'true' ELSE 'false' END),
            'transport', NEW.transport, 'ip', NEW.ip, 'browser', NEW.browser, 'os', NEW.os),
        CAST(unixepoch('subsec') * 1000000 AS INTEGER));
END;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE TRIGGER webhook_session_rotated AFTER UPDATE OF token_hash ON sessions
WHEN NEW.token_hash <> OLD.token_hash AND NEW.user_id IS NOT NULL
    AND (SELECT enabled FROM webhook_state WHERE id = 1) = 1
BEGIN
    INSERT INTO webhook_outbox (id, type, data, created_at)
    VALUES (lower(hex(randomblob(16))), 'session.rotated',
        json_object('session_id', NEW.id, 'user_id', NEW.user_id),
        CAST(unixepoch('subsec') * 1000000 AS INTEGER));
END;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE TRIGGER webhook_session_revoked AFTER UPDATE OF revoked_at ON sessions
WHEN OLD.revoked_at IS NULL AND NEW.revoked_at IS NOT NULL AND NEW.user_id IS NOT NULL
    AND (SELECT enabled FROM webhook_state WHERE id = 1) = 1
BEGIN
    INSERT INTO webhook_outbox (id, type, data, created_at)
    VALUES (lower(hex(randomblob(16))), 'session.revoked',
        json_object('session_id', NEW.id, 'user_id', NEW.user_id, 'reason', NEW.revoke_reason),
        CAST(unixepoch('subsec') * 1000000 AS INTEGER));
END;
-- +goose StatementEnd

-- A session that ran out its time without being revoked, told when the
-- sweep deletes it.
-- +goose StatementBegin
CREATE TRIGGER webhook_session_expired AFTER DELETE ON sessions
WHEN OLD.revoked_at IS NULL AND OLD.user_id IS NOT NULL
    AND (SELECT enabled FROM webhook_state WHERE id = 1) = 1
BEGIN
    INSERT INTO webhook_outbox (id, type, data, created_at)
    VALUES (lower(hex(randomblob(16))), 'session.revoked',
        json_object('session_id', OLD.id, 'user_id', OLD.user_id, 'reason', 'expired'),
        CAST(unixepoch('subsec') * 1000000 AS INTEGER));
END;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE TRIGGER webhook_user_created AFTER INSERT ON users
WHEN (SELECT enabled FROM webhook_state WHERE id = 1) = 1
BEGIN
    INSERT INTO webhook_outbox (id, type, data, created_at)
    VALUES (lower(hex(randomblob(16))), 'user.created',
        json_object('user_id', NEW.id, 'email', NEW.email),
        CAST(unixepoch('subsec') * 1000000 AS INTEGER));
END;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE TRIGGER webhook_user_deleted AFTER DELETE ON users
WHEN (SELECT enabled FROM webhook_state WHERE id = 1) = 1
BEGIN
    INSERT INTO webhook_outbox (id, type, data, created_at)
    VALUES (lower(hex(randomblob(16))), 'user.deleted',
        json_object('user_id', OLD.id, 'email', OLD.email),
        CAST(unixepoch('subsec') * 1000000 AS INTEGER));
END;
-- +goose StatementEnd

-- +goose Down
DROP TRIGGER webhook_user_deleted;
DROP TRIGGER webhook_user_created;
DROP TRIGGER webhook_session_expired;
DROP TRIGGER webhook_session_revoked;
DROP TRIGGER webhook_session_rotated;
DROP TRIGGER webhook_session_created;
DROP TABLE webhook_outbox;
DROP TABLE webhook_state;
