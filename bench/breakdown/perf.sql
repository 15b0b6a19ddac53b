-- perf.sql -- the profile of the breakdown benchmark: perf record samples
-- this backend during one COPY of the event file into ato.login_events
-- (emptied first), writing :perf_data; bench/run.sh prints the report.
-- Needs perf and the right to trace the server's processes (root).
--
--   psql -v events_file=/tmp/x/events.csv -v perf_data=/tmp/x/perf.data -f bench/breakdown/perf.sql
--   perf report -i /tmp/x/perf.data --stdio

\ir ../lib/prelude.sql
SELECT bench.fail('perf.sql: give -v events_file=FILE -v perf_data=FILE')
 WHERE NOT (:{?events_file} AND :{?perf_data});

TRUNCATE ato.login_events;
CHECKPOINT;
SELECT pg_backend_pid() AS pid \gset
\setenv BENCH_PID :pid
\setenv BENCH_PERF_DATA :perf_data
\setenv BENCH_PERF_PID :perf_data.pid
\! perf record -q --call-graph dwarf,16384 -F 499 -o "$BENCH_PERF_DATA" -p "$BENCH_PID" >/dev/null 2>&1 & echo $! > "$BENCH_PERF_PID"; sleep 1
\set table ato.login_events
:copy_events
\! kill -INT "$(cat "$BENCH_PERF_PID")"; while kill -0 "$(cat "$BENCH_PERF_PID")" 2>/dev/null; do sleep 0.2; done
