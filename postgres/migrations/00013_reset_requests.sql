-- Password-reset requests that issued a token, counted per account and
-- client key (an address, an IPv6 /64) over a sliding window, so that
-- every node holds an account to one limit
-- (account.Store.TakeResetRequest, under the user's row lock). Rows older
-- than the window are deleted at the account's next request, and with the
-- user.

-- +goose Up
CREATE TABLE reset_requests (
    user_id      text        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    from_key     text        NOT NULL,
    requested_at timestamptz NOT NULL
);

CREATE INDEX reset_requests_user_time ON reset_requests (user_id, requested_at);

-- +goose Down
DROP TABLE reset_requests;
