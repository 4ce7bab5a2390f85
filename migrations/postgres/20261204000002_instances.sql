-- Several instances on one database: see migrations/sqlite/20261204000001_instances.sql.
ALTER TABLE inbox ADD COLUMN person TEXT;
CREATE INDEX inbox_unhandled_by_person ON inbox (person, id) WHERE handled_at IS NULL;
ALTER TABLE turns ADD COLUMN claimed_by TEXT;
CREATE TABLE instances (
    id           TEXT   PRIMARY KEY,
    started_at   BIGINT NOT NULL,
    heartbeat_at BIGINT NOT NULL
);
CREATE TABLE leases (
    name       TEXT   PRIMARY KEY,
    instance   TEXT   NOT NULL,
    expires_at BIGINT NOT NULL
);
