-- Every foreign key has an index (API.md §2): readings.gateway_id had
-- none, so a check of a gateway's readings (a hard delete of a gateway
-- row, a query by gateway) read the whole table. A plain CREATE INDEX
-- holds writes to readings while it builds; migrations run before the
-- runtime starts, so nothing is writing then.
CREATE INDEX readings_gateway_id_idx ON readings (gateway_id);

---- create above / drop below ----

DROP INDEX readings_gateway_id_idx;
