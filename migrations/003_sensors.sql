-- Sensors behind each gateway, and the equipment they are mounted on.

-- set_updated_at_ignoring is set_updated_at for rows that the runtime
-- refreshes: updated_at moves only when a column other than the ones
-- named in the trigger's arguments (and updated_at) changes.
CREATE FUNCTION set_updated_at_ignoring() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    n jsonb := to_jsonb(NEW) - 'updated_at';
    o jsonb := to_jsonb(OLD) - 'updated_at';
    col text;
BEGIN
    FOREACH col IN ARRAY TG_ARGV LOOP
        n := n - col;
        o := o - col;
    END LOOP;
    IF n IS DISTINCT FROM o THEN
        NEW.updated_at := now();
    ELSE
        NEW.updated_at := OLD.updated_at;
    END IF;
    RETURN NEW;
END;
$$;

CREATE TABLE equipment (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    factory_id  uuid NOT NULL REFERENCES factories (id),
    name        text NOT NULL,
    kind        text,
    metadata    jsonb NOT NULL DEFAULT '{}',
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    deleted_at  timestamptz
);
CREATE INDEX equipment_factory_id_idx ON equipment (factory_id) WHERE deleted_at IS NULL;
CREATE INDEX equipment_name_idx ON equipment (name, id) WHERE deleted_at IS NULL;
CREATE TRIGGER equipment_updated_at BEFORE UPDATE ON equipment
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

CREATE TABLE sensors (
    id                  uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    gateway_id          uuid NOT NULL REFERENCES gateways (id),
    serial              bigint NOT NULL,
    name                text NOT NULL,
    -- name_set: an operator named the sensor; discovery keeps that name.
    name_set            boolean NOT NULL DEFAULT false,
    part_number         text,
    read_rate_hz        double precision,
    samples             integer,
    connected           boolean NOT NULL DEFAULT true,
    equipment_id        uuid REFERENCES equipment (id),
    reading_interval    interval,
    last_temperature_c  double precision,
    last_temperature_at timestamptz,
    first_seen_at       timestamptz NOT NULL DEFAULT now(),
    last_seen_at        timestamptz NOT NULL DEFAULT now(),
    metadata            jsonb NOT NULL DEFAULT '{}',
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    deleted_at          timestamptz,
    CONSTRAINT sensors_reading_interval_check CHECK (reading_interval IS NULL OR reading_interval >= interval '1 minute')
);
CREATE UNIQUE INDEX sensors_gateway_id_serial_key ON sensors (gateway_id, serial) WHERE deleted_at IS NULL;
CREATE INDEX sensors_equipment_id_idx ON sensors (equipment_id) WHERE deleted_at IS NULL;
CREATE INDEX sensors_last_seen_at_idx ON sensors (last_seen_at) WHERE deleted_at IS NULL;
CREATE TRIGGER sensors_updated_at BEFORE UPDATE ON sensors
    FOR EACH ROW EXECUTE FUNCTION set_updated_at_ignoring('last_seen_at', 'last_temperature_c', 'last_temperature_at');

---- create above / drop below ----

DROP TABLE sensors;
DROP TABLE equipment;
DROP FUNCTION set_updated_at_ignoring();
