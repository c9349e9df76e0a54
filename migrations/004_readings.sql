-- Vibration readings: one row per acquisition with its analysis, and the
-- samples themselves, packed, in a table of their own (so lists and
-- summaries never read them, and retention can drop them alone).

CREATE TABLE readings (
    id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    sensor_id      uuid NOT NULL REFERENCES sensors (id),
    gateway_id     uuid NOT NULL REFERENCES gateways (id),
    trigger        text NOT NULL CONSTRAINT readings_trigger_check CHECK (trigger IN ('MANUAL', 'SCHEDULED', 'GATEWAY')),
    status         text NOT NULL CONSTRAINT readings_status_check CHECK (status IN ('QUEUED', 'RUNNING', 'COMPLETE', 'FAILED')),
    error          text,
    requested_at   timestamptz NOT NULL DEFAULT now(),
    started_at     timestamptz,
    completed_at   timestamptz,
    sample_rate_hz double precision,
    samples        integer,
    summary        jsonb
);
CREATE INDEX readings_sensor_id_requested_at_idx ON readings (sensor_id, requested_at DESC, id DESC);
CREATE INDEX readings_unfinished_idx ON readings (status) WHERE status IN ('QUEUED', 'RUNNING');

-- data: float32 little-endian samples, all of X, then Y, then Z: 12 bytes
-- per 3-axis sample. Noise does not compress, so TOAST is told not to try.
CREATE TABLE reading_samples (
    reading_id uuid PRIMARY KEY REFERENCES readings (id) ON DELETE CASCADE,
    data       bytea NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
ALTER TABLE reading_samples ALTER COLUMN data SET STORAGE EXTERNAL;
CREATE INDEX reading_samples_created_at_idx ON reading_samples (created_at);

---- create above / drop below ----

DROP TABLE reading_samples;
DROP TABLE readings;
