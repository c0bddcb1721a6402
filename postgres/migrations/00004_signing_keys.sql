-- Signing keys of client-side access tokens, shared by every node that
-- uses this database. The private key is sealed (XChaCha20-Poly1305) with a
-- key-encryption key that is not in the database. The same table as
-- SQLite's 00004.

-- +goose Up
CREATE TABLE signing_keys (
    id         text        NOT NULL PRIMARY KEY,
    sealed     bytea       NOT NULL,
    created_at timestamptz NOT NULL,
    active_at  timestamptz NOT NULL
);

-- +goose Down
DROP TABLE signing_keys;
