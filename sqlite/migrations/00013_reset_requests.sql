-- Password-reset requests that issued a token, counted per account and
-- client key (an address, an IPv6 /64) over a sliding window, so that
-- every process on the database holds an account to one limit
-- (account.Store.TakeResetRequest). Rows older than the window are deleted
-- at the account's next request, and with the user. Times are INTEGER
-- unix microseconds, UTC, as in 00001.

-- +goose Up
CREATE TABLE reset_requests (
    user_id      TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    from_key     TEXT    NOT NULL,
    requested_at INTEGER NOT NULL
) STRICT;

CREATE INDEX reset_requests_user_time ON reset_requests (user_id, requested_at);

-- +goose Down
DROP TABLE reset_requests;
