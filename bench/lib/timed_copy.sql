-- timed_copy.sql -- the tables emptied by :truncate, then the COPY of
-- :events_file into :table timed as (:variant, :run).

:truncate
\set stmt :copy_events
\ir timed.sql
