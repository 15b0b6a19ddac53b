-- one_window.sql -- window :w, from :lo to :hi, in both tables: the answers
-- compared, a warm-up and :runs timed rounds (round.sql), the buffers each
-- plan touched, and the window's line.

SELECT format(:'window_query', 'ato.login_events', :'lo', :'hi') AS q_ato,
       format(:'window_query', 'bench.plain_window', :'lo', :'hi') AS q_plain \gset
:q_ato \gset ato_
:q_plain \gset plain_
SELECT bench.fail(format('window: the two tables disagree on window %s', :'w'))
 WHERE NOT (:'ato_n' = :'plain_n' AND :'ato_users' = :'plain_users');
\set run 0
\ir round.sql
SELECT bench.blocks_read(:'q_ato') AS ato_blocks \gset
SELECT bench.blocks_read(:'q_plain') AS plain_blocks \gset
SELECT format('window %s: %s successful logins of %s accounts; ato median %s ms reading %s blocks; plain (B-tree) median %s ms reading %s blocks; ratio (plain/ato time) %s',
              :'w', :'ato_n', :'ato_users',
              round((a * 1000)::numeric, 1), :'ato_blocks', round((p * 1000)::numeric, 1), :'plain_blocks', round((p / a)::numeric, 2))
  FROM (SELECT bench.median(:'w' || '_login_events') AS a, bench.median(:'w' || '_plain_window') AS p) m;
