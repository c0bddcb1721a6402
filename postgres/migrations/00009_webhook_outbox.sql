-- The outbox of lifecycle webhooks (package webhook): one row per event,
-- written by the triggers below in the same transaction as the change it
-- describes, so that a committed change always has its event. A dispatcher
-- claims due rows (FOR UPDATE SKIP LOCKED: several nodes share the work),
-- POSTs them and records the outcome. The triggers write only while
-- webhook_state.enabled is true, which a server configured with a webhook
-- URL sets when it starts. The same tables as SQLite's 00009.

-- +goose Up
CREATE TABLE webhook_state (
    id      integer NOT NULL PRIMARY KEY CHECK (id = 1),
    enabled boolean NOT NULL DEFAULT false
);
INSERT INTO webhook_state (id, enabled) VALUES (1, false);

CREATE TABLE webhook_outbox (
    seq             bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id              text        NOT NULL UNIQUE DEFAULT md5(random()::text || clock_timestamp()::text),
    type            text        NOT NULL,
    data            jsonb       NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT clock_timestamp(),
    attempts        integer     NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT '-infinity',
    delivered_at    timestamptz,
    dead_at         timestamptz,
    last_error      text        NOT NULL DEFAULT ''
);

CREATE INDEX webhook_outbox_due ON webhook_outbox (next_attempt_at)
    WHERE delivered_at IS NULL AND dead_at IS NULL;

-- +goose StatementBegin
CREATE FUNCTION sessiond_webhook_event(t text, d jsonb) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF (SELECT enabled FROM webhook_state WHERE id = 1) THEN
        INSERT INTO webhook_outbox (type, data) VALUES (t, d);
    END IF;
END
$$;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE FUNCTION sessiond_webhook_sessions() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        IF NEW.user_id IS NOT NULL THEN
            PERFORM sessiond_webhook_event('session.created', jsonb_build_object(
                'session_id', NEW.id, 'user_id', NEW.user_id, 'remember_me', NEW.remember_me,
                'transport', NEW.transport, 'ip', NEW.ip, 'browser', NEW.browser, 'os', NEW.os));
        END IF;
    ELSIF TG_OP = 'UPDATE' THEN
        IF NEW.user_id IS NOT NULL AND OLD.revoked_at IS NULL AND NEW.revoked_at IS NOT NULL THEN
            PERFORM sessiond_webhook_event('session.revoked', jsonb_build_object(
                'session_id', NEW.id, 'user_id', NEW.user_id, 'reason', NEW.revoke_reason));
        ELSIF NEW.user_id IS NOT NULL AND NEW.token_hash <> OLD.token_hash THEN
            PERFORM sessiond_webhook_event('session.rotated', jsonb_build_object(
                'session_id', NEW.id, 'user_id', NEW.user_id));
        END IF;
    ELSIF TG_OP = 'DELETE' THEN
        -- Ran out its time without being revoked: told when swept.
        IF OLD.user_id IS NOT NULL AND OLD.revoked_at IS NULL THEN
            PERFORM sessiond_webhook_event('session.revoked', jsonb_build_object(
                'session_id', OLD.id, 'user_id', OLD.user_id, 'reason', 'expired'));
        END IF;
    END IF;
    RETURN NULL;
END
$$;
-- +goose StatementEnd

CREATE TRIGGER sessiond_webhook_sessions
    AFTER INSERT OR UPDATE OF token_hash, revoked_at OR DELETE ON sessions
    FOR EACH ROW EXECUTE FUNCTION sessiond_webhook_sessions();

-- +goose StatementBegin
CREATE FUNCTION sessiond_webhook_users() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        PERFORM sessiond_webhook_event('user.created', jsonb_build_object('user_id', NEW.id, 'email', NEW.email));
    ELSE
        PERFORM sessiond_webhook_event('user.deleted', jsonb_build_object('user_id', OLD.id, 'email', OLD.email));
    END IF;
    RETURN NULL;
END
$$;
-- +goose StatementEnd

CREATE TRIGGER sessiond_webhook_users
    AFTER INSERT OR DELETE ON users
    FOR EACH ROW EXECUTE FUNCTION sessiond_webhook_users();

-- +goose Down
DROP TRIGGER sessiond_webhook_users ON users;
DROP FUNCTION sessiond_webhook_users();
DROP TRIGGER sessiond_webhook_sessions ON sessions;
DROP FUNCTION sessiond_webhook_sessions();
DROP FUNCTION sessiond_webhook_event(text, jsonb);
DROP TABLE webhook_outbox;
DROP TABLE webhook_state;
