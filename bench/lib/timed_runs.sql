-- timed_runs.sql -- lib/timed.sql for :stmt as :variant, once for each run
-- from :run to :runs (set :run to 0 first: a warm-up, then :runs timed).

\ir timed.sql
\ir next_run.sql
\if :more
\ir timed_runs.sql
\endif
