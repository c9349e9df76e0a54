-- discovered_at is the time of the discovery answer a sensor's reported
-- fields (name, part number, rate, samples, connected) come from. The
-- writer merges a gateway's discovery after the API's discover has merged
-- a newer one of the same gateway, now and then: the older answer then
-- put its values back over the newer ones (a read rate of 100 over 200;
-- seen as a CI flake of TestMergeRulesThroughDiscover). A merge now
-- applies those fields only from an answer at least as new as the one
-- they came from. last_seen_at could not say it: temperatures and other
-- sightings move it too. Like last_seen_at, it is the runtime's, not an
-- edit: it does not move updated_at.
ALTER TABLE sensors ADD COLUMN discovered_at timestamptz;

DROP TRIGGER sensors_updated_at ON sensors;
CREATE TRIGGER sensors_updated_at BEFORE UPDATE ON sensors
    FOR EACH ROW EXECUTE FUNCTION set_updated_at_ignoring('last_seen_at', 'last_temperature_c', 'last_temperature_at', 'discovered_at');

---- create above / drop below ----

DROP TRIGGER sensors_updated_at ON sensors;
CREATE TRIGGER sensors_updated_at BEFORE UPDATE ON sensors
    FOR EACH ROW EXECUTE FUNCTION set_updated_at_ignoring('last_seen_at', 'last_temperature_c', 'last_temperature_at');
ALTER TABLE sensors DROP COLUMN discovered_at;
