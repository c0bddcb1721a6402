-- A pending change of email can be cancelled from the current address: the
-- notice sent there carries a cancellation token, of which only the
-- SHA-256 is stored (NULL for changes requested before this migration).

-- +goose Up
ALTER TABLE email_changes ADD COLUMN cancel_hash bytea UNIQUE CHECK (octet_length(cancel_hash) = 32);

-- +goose Down
ALTER TABLE email_changes DROP COLUMN cancel_hash;
