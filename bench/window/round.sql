-- round.sql -- round :run of window :w, then the next ones up to :runs: the
-- window's query timed on ato.login_events, then on the plain table.

\set variant :w _login_events
\set stmt :q_ato ' \\g /dev/null'
\ir ../lib/timed.sql
\set variant :w _plain_window
\set stmt :q_plain ' \\g /dev/null'
\ir ../lib/timed.sql

\ir ../lib/next_run.sql
\if :more
\ir round.sql
\endif
