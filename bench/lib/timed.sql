-- timed.sql -- one timed statement: checkpoints and flushes the kernel's
-- dirty pages (so that no write-back of an earlier run lands in this one),
-- then runs :stmt with the time from just before to just after it (one
-- round trip of SELECTs on a Unix socket, ~0.1 ms) recorded in bench.timing
-- as (:variant, :run), with the row count the last statement reported (a
-- COPY's rows).  Run 0 is a warm-up that the medians leave out: the first
-- COPYs of a cluster also create its WAL segments, which later ones recycle.
--
--   \set variant plain
--   \set run 1
--   \set stmt :copy_events          (statements ending in ; or \g, \gset;
--   \ir ../lib/timed.sql             their variables are read here)

CHECKPOINT;
\! sync
SELECT clock_timestamp() AS t0 \gset
:stmt
INSERT INTO bench.timing VALUES (:'variant', :run, extract(epoch FROM clock_timestamp() - :'t0'::timestamptz), :ROW_COUNT);
