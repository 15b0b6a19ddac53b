-- agree.sql -- fails the run unless the queries :query_a and :query_b
-- return the same rows (count and checksum); :what names the comparison in
-- the message.  Sets :answer_a_n and :answer_b_n, the row counts.

SELECT count(*) AS n, coalesce(md5(string_agg(r::text, ';' ORDER BY r::text)), 'no rows') AS sum FROM (:query_a) r \gset answer_a_
SELECT count(*) AS n, coalesce(md5(string_agg(r::text, ';' ORDER BY r::text)), 'no rows') AS sum FROM (:query_b) r \gset answer_b_
SELECT bench.fail(format('%s: the answers differ: rows %s against %s', :'what', :'answer_a_n', :'answer_b_n'))
 WHERE :'answer_a_sum' <> :'answer_b_sum';
