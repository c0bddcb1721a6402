-- The devices (browser and OS family) each user has signed in from, one
-- row per user and device, so that of two nodes seeing a new device at
-- once exactly one inserts it and tells the user (audit.Store.AddDevice).
-- last_seen is the latest sign-in from it; the retention sweep forgets a
-- device with its last sign-in. Filled from the sign-ins already in the
-- trail. Unknown browsers and OSes are '' (NULL in audit_events). The same
-- table as SQLite's 00014.

-- +goose Up
CREATE TABLE audit_devices (
    user_id   text        NOT NULL,
    browser   text        NOT NULL,
    os        text        NOT NULL,
    last_seen timestamptz NOT NULL,
    PRIMARY KEY (user_id, browser, os)
);

-- The retention sweep.
CREATE INDEX audit_devices_last_seen ON audit_devices (last_seen);

INSERT INTO audit_devices (user_id, browser, os, last_seen)
SELECT user_id, coalesce(browser, ''), coalesce(os, ''), max(time)
FROM audit_events WHERE type = 'signed_in'
GROUP BY user_id, coalesce(browser, ''), coalesce(os, '');

-- +goose Down
DROP TABLE audit_devices;
