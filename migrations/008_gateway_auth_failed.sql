-- A gateway that refused gatewayd's login stays AUTH_FAILED "until
-- url/email/password change or a connect request" (API.md §4). The state
-- lived only in its actor, so every restart of gatewayd (a deploy) tried
-- the known-bad login once more, which a gateway that locks accounts
-- after failed logins counts. The refusal is kept here, with the error
-- the gateway gave, and cleared by a change of credentials or a connect.
ALTER TABLE gateways
    ADD COLUMN auth_failed_at    timestamptz,
    ADD COLUMN auth_failed_error text;

---- create above / drop below ----

ALTER TABLE gateways
    DROP COLUMN auth_failed_error,
    DROP COLUMN auth_failed_at;
