-- The audit trail: security events of users (sign-ins, sign-outs, password
-- changes, lockouts), kept for a retention period.
--
-- Times are INTEGER unix microseconds, UTC, as in 00001. There is no
-- foreign key to users: the trail of a deleted account stays until the
-- retention period ends. seq is the order of recording, the tie-breaker
-- of events with equal times.

-- +goose Up
CREATE TABLE audit_events (
    seq        INTEGER NOT NULL PRIMARY KEY,
    id         TEXT    NOT NULL UNIQUE,
    user_id    TEXT    NOT NULL,
    type       TEXT    NOT NULL,
    time       INTEGER NOT NULL,
    session_id TEXT,
    ip         TEXT,
    browser    TEXT,
    os         TEXT,
    data       TEXT                     -- a JSON object, or NULL
) STRICT;

-- A user's events, newest first; also HasDevice.
CREATE INDEX audit_events_user_time ON audit_events (user_id, time);
-- The retention sweep.
CREATE INDEX audit_events_time ON audit_events (time);

-- +goose Down
DROP TABLE audit_events;
