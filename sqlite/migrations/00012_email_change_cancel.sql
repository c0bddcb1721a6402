-- A pending change of email can be cancelled from the current address: the
-- notice sent there carries a cancellation token, of which only the
-- SHA-256 is stored (NULL for changes requested before this migration).

-- +goose Up
ALTER TABLE email_changes ADD COLUMN cancel_hash BLOB CHECK (cancel_hash IS NULL OR length(cancel_hash) = 32);

CREATE UNIQUE INDEX email_changes_cancel_hash ON email_changes (cancel_hash);

-- +goose Down
DROP INDEX email_changes_cancel_hash;
ALTER TABLE email_changes DROP COLUMN cancel_hash;
