-- sensor_lists holds, per gateway, the time of the newest discovery
-- answer merged. A merge disconnects what the newest answer left out,
-- whether that is its own answer or a newer one merged before it (the
-- API's discover, ahead of the writer's older answer). Measured from the
-- sensors' own stamps, a newer answer that listed nothing and
-- disconnected nothing (a gateway without sensors, or with all of them
-- disconnected already) left no trace, and an older answer merged after
-- it connected what it listed (found by an audit, helper 10).
CREATE TABLE sensor_lists (
    gateway_id uuid PRIMARY KEY REFERENCES gateways (id) ON DELETE CASCADE,
    listed_at  timestamptz NOT NULL
);

---- create above / drop below ----

DROP TABLE sensor_lists;
