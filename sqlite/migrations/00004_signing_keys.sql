-- Signing keys of client-side access tokens, shared by every node that
-- uses this database. The private key is sealed (XChaCha20-Poly1305) with a
-- key-encryption key that is not in the database.

-- +goose Up
CREATE TABLE signing_keys (
    id         TEXT    NOT NULL PRIMARY KEY,
    sealed     BLOB    NOT NULL,
    created_at INTEGER NOT NULL,
    active_at  INTEGER NOT NULL
) STRICT;

-- +goose Down
DROP TABLE signing_keys;
