-- The revocation generation of each user (sessiond.Store.UserGeneration):
-- how many times all of the user's sessions were ended (RevokeByUser), in
-- the same transaction as the revocation and under the user's advisory
-- lock (Store.Create's qLockUser). A sign-in reads it before it checks the
-- password; its Create takes the same lock and calls
-- sessiond_expect_generation before the insert, which fails with SQLSTATE
-- SD001 when the generation moved. A user without a row is at 0. The same
-- table as SQLite's 00010. Forward-only: older sessiond versions ignore it.

-- +goose Up
CREATE TABLE user_generations (
    user_id    text   PRIMARY KEY,
    generation bigint NOT NULL
);

-- +goose StatementBegin
CREATE FUNCTION sessiond_expect_generation(u text, expected bigint) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF coalesce((SELECT generation FROM user_generations WHERE user_id = u), 0) <> expected THEN
        RAISE EXCEPTION 'sessiond: credentials changed' USING ERRCODE = 'SD001';
    END IF;
END
$$;
-- +goose StatementEnd
