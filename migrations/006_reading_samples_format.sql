-- Samples are packed (internal/wavepack): format says how. 0 is the
-- float32 layout of 004, which every row written before this migration
-- keeps; 1 is XOR byte planes with the high planes Huffman-coded, ~69 % of
-- the raw size for a noisy vibration. Both hold the same float32 samples.
-- The data is packed already, so TOAST stays told not to compress it
-- (STORAGE EXTERNAL, set in 004).
ALTER TABLE reading_samples ADD COLUMN format smallint NOT NULL DEFAULT 0
    CONSTRAINT reading_samples_format_check CHECK (format IN (0, 1));

---- create above / drop below ----

-- Rows in format 1 cannot be read as format 0: remove them (their
-- readings and summaries stay, as after retention).
DELETE FROM reading_samples WHERE format <> 0;
ALTER TABLE reading_samples DROP COLUMN format;
