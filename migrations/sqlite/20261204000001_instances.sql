-- Several instances on one database (Postgres; the same tables here so that the schemas
-- match and `kindred db copy` moves everything).
-- inbox.person: whose event it is (platform, chat and user), so that the instance that
--   holds a person's lease handles their events in order, whichever instance received them.
-- turns.claimed_by: the instance that sends a reply still pending; another instance
--   re-sends it only once that one has stopped beating (see instances).
-- instances: each running `kindred run` and its last heartbeat.
-- leases: who handles a person now ("person:…"), and who runs the periodic work
--   ("leader"); a lease of an instance whose heartbeat stopped is free.
ALTER TABLE inbox ADD COLUMN person TEXT;
CREATE INDEX inbox_unhandled_by_person ON inbox (person, id) WHERE handled_at IS NULL;
ALTER TABLE turns ADD COLUMN claimed_by TEXT;
CREATE TABLE instances (
    id           TEXT    PRIMARY KEY,
    started_at   INTEGER NOT NULL,
    heartbeat_at INTEGER NOT NULL
);
CREATE TABLE leases (
    name       TEXT    PRIMARY KEY,
    instance   TEXT    NOT NULL,
    expires_at INTEGER NOT NULL
);
