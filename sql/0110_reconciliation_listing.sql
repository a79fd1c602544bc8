-- When a reconciliation began listing the broker's orders (wall clock, UTC). The next one lists
-- only orders submitted since the last clean one's listing (less a margin for clock skew):
-- older orders were compared then, and the terminal ones cannot change.
ALTER TABLE reconciliations ADD COLUMN listed_at timestamptz;
