-- Oversold stocks (available below zero) are counted at every metrics scrape: a partial index
-- holds only those rows, so the count does not read the whole table.
CREATE INDEX IF NOT EXISTS stock_levels_oversold ON stock_levels (stock_id)
    WHERE physical_micros < reserved_micros;
