-- next_run.sql -- the step of a loop over runs: :run one up, and :more
-- whether that run is still within :runs.  A file of rounds ends with
--
--   \ir ../lib/next_run.sql
--   \if :more
--   \ir round.sql
--   \endif
--
-- and the caller sets :run (0 for a warm-up first) before including it.

SELECT :run + 1 AS run, :run < :runs AS more \gset
