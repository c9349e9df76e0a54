-- The operator's wish for a gateway's connection is data: a disconnect
-- outlives a restart of gatewayd.
ALTER TABLE gateways
    ADD COLUMN desired_state text NOT NULL DEFAULT 'CONNECTED'
        CONSTRAINT gateways_desired_state_check CHECK (desired_state IN ('CONNECTED', 'DISCONNECTED'));

---- create above / drop below ----

ALTER TABLE gateways DROP COLUMN desired_state;
