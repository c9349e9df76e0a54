-- API tokens: only a SHA-256 hash of each secret is stored.
CREATE TABLE api_tokens (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name         text NOT NULL,
    role         text NOT NULL CONSTRAINT api_tokens_role_check CHECK (role IN ('viewer', 'operator', 'admin')),
    token_hash   bytea NOT NULL CONSTRAINT api_tokens_token_hash_key UNIQUE,
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_used_at timestamptz,
    expires_at   timestamptz,
    revoked_at   timestamptz
);

---- create above / drop below ----

DROP TABLE api_tokens;
