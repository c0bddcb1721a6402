-- The revocation generation of each user (sessiond.Store.UserGeneration):
-- how many times all of the user's sessions were ended (RevokeByUser), in
-- the same transaction as the revocation. A sign-in reads it before it
-- checks the password and creates its session only if it has not moved
-- since, in the transaction of the insert. A user without a row is at 0.
-- Forward-only: older sessiond versions ignore the table.

-- +goose Up
CREATE TABLE user_generations (
	user_id TEXT PRIMARY KEY,
	generation INTEGER NOT NULL
) WITHOUT ROWID;
