-- The audit trail: security events of users (sign-ins, sign-outs, password
-- changes, lockouts), kept for a retention period. The same table as
-- SQLite's 00003.
--
-- There is no foreign key to users: the trail of a deleted account stays
-- until the retention period ends. seq is the order of recording, the
-- tie-breaker of events with equal times. Empty strings are stored as NULL.

-- +goose Up
CREATE TABLE audit_events (
    seq        bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id         text        NOT NULL UNIQUE,
    user_id    text        NOT NULL,
    type       text        NOT NULL,
    time       timestamptz NOT NULL,
    session_id text,
    ip         text,
    browser    text,
    os         text,
    data       jsonb                    -- a JSON object, or NULL
);

-- A user's events, newest first; also HasDevice.
CREATE INDEX audit_events_user_time ON audit_events (user_id, time);
-- The retention sweep.
CREATE INDEX audit_events_time ON audit_events (time);

-- +goose Down
DROP TABLE audit_events;
