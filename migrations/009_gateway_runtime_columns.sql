-- A gateway's updated_at says when a client last changed it. The columns
-- the runtime writes are not such a change: last_seen_at was ignored from
-- the start, but migration 008's auth_failed_at and auth_failed_error were
-- not, and a refused login moved updated_at (found by an audit, helper 5).
DROP TRIGGER gateways_updated_at ON gateways;
CREATE TRIGGER gateways_updated_at BEFORE UPDATE ON gateways
    FOR EACH ROW EXECUTE FUNCTION set_updated_at_ignoring('last_seen_at', 'auth_failed_at', 'auth_failed_error');

---- create above / drop below ----

DROP TRIGGER gateways_updated_at ON gateways;
CREATE TRIGGER gateways_updated_at BEFORE UPDATE ON gateways
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();
