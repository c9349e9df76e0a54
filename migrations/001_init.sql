-- gatewayd schema: organizations → factories → gateways, soft-deleted.

CREATE FUNCTION set_updated_at() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    -- last_seen_at is written by the runtime, not by a user edit: a row whose
    -- only change is last_seen_at keeps its updated_at.
    IF (to_jsonb(NEW) - 'updated_at' - 'last_seen_at') IS DISTINCT FROM
       (to_jsonb(OLD) - 'updated_at' - 'last_seen_at') THEN
        NEW.updated_at := now();
    ELSE
        NEW.updated_at := OLD.updated_at;
    END IF;
    RETURN NEW;
END;
$$;

CREATE TABLE organizations (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name        text NOT NULL,
    metadata    jsonb NOT NULL DEFAULT '{}',
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    deleted_at  timestamptz
);
CREATE INDEX organizations_name_idx ON organizations (name, id) WHERE deleted_at IS NULL;
CREATE TRIGGER organizations_updated_at BEFORE UPDATE ON organizations
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

CREATE TABLE factories (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    organization_id uuid NOT NULL REFERENCES organizations (id),
    name            text NOT NULL,
    location        text,
    timezone        text NOT NULL DEFAULT 'UTC',
    metadata        jsonb NOT NULL DEFAULT '{}',
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    deleted_at      timestamptz
);
CREATE INDEX factories_organization_id_idx ON factories (organization_id) WHERE deleted_at IS NULL;
CREATE INDEX factories_name_idx ON factories (name, id) WHERE deleted_at IS NULL;
CREATE TRIGGER factories_updated_at BEFORE UPDATE ON factories
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

CREATE TABLE gateways (
    id                 uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    factory_id         uuid NOT NULL REFERENCES factories (id),
    gateway_id         text NOT NULL,
    name               text NOT NULL,
    url                text NOT NULL,
    email              text NOT NULL,
    password_encrypted text NOT NULL,
    model              text,
    firmware_version   text,
    last_seen_at       timestamptz,
    metadata           jsonb NOT NULL DEFAULT '{}',
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    deleted_at         timestamptz
);
CREATE INDEX gateways_factory_id_idx ON gateways (factory_id) WHERE deleted_at IS NULL;
CREATE INDEX gateways_name_idx ON gateways (name, id) WHERE deleted_at IS NULL;
CREATE INDEX gateways_last_seen_at_idx ON gateways (last_seen_at) WHERE deleted_at IS NULL;
CREATE UNIQUE INDEX gateways_gateway_id_key ON gateways (gateway_id) WHERE deleted_at IS NULL;
CREATE TRIGGER gateways_updated_at BEFORE UPDATE ON gateways
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

INSERT INTO organizations (name) VALUES ('Default Organization');

---- create above / drop below ----

DROP TABLE gateways;
DROP TABLE factories;
DROP TABLE organizations;
DROP FUNCTION set_updated_at();
