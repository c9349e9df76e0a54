-- updated_at moves when what a client reads changes. The triggers compared
-- rows as jsonb, where 1.5 = 1.50: a metadata number sent again with
-- another scale (README: jsonb keeps the scale sent) changed the answer
-- and left updated_at, and with it gateway.updated and sensor.updated,
-- where they were (found by an audit, helper 14). They compare the rows'
-- text now (jsonb's text is canonical: keys sorted, numbers as stored).
-- A write no client made may keep updated_at by setting
-- gatewayd.keep_updated_at for its transaction: rekey's re-sealed
-- passwords changed no column a client sees, yet stamped every gateway
-- as edited at the rotation (found by the same audit).
CREATE OR REPLACE FUNCTION set_updated_at() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    -- last_seen_at is written by the runtime, not by a user edit: a row whose
    -- only change is last_seen_at keeps its updated_at.
    IF current_setting('gatewayd.keep_updated_at', true) IS DISTINCT FROM 'on'
       AND (to_jsonb(NEW) - 'updated_at' - 'last_seen_at')::text IS DISTINCT FROM
           (to_jsonb(OLD) - 'updated_at' - 'last_seen_at')::text THEN
        NEW.updated_at := now();
    ELSE
        NEW.updated_at := OLD.updated_at;
    END IF;
    RETURN NEW;
END;
$$;

CREATE OR REPLACE FUNCTION set_updated_at_ignoring() RETURNS trigger
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
    IF current_setting('gatewayd.keep_updated_at', true) IS DISTINCT FROM 'on'
       AND n::text IS DISTINCT FROM o::text THEN
        NEW.updated_at := now();
    ELSE
        NEW.updated_at := OLD.updated_at;
    END IF;
    RETURN NEW;
END;
$$;

---- create above / drop below ----

CREATE OR REPLACE FUNCTION set_updated_at() RETURNS trigger
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

CREATE OR REPLACE FUNCTION set_updated_at_ignoring() RETURNS trigger
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
