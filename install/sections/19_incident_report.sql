-- install/sections/19_incident_report.sql: ato.incident_report(): an incident as one self-contained HTML page (inline SVG and CSS, no script, no external asset) with its attack curve, countries and networks, timeline, scope and what is outstanding.
-- A piece of the install script, which the Makefile assembles: not loadable alone.

-- ---------------------------------------------------------------------------
-- The report.  Every value that reaches the page goes through
-- ato.html_escape(): user agents, event types, reasons and notes are the
-- attacker's or anyone's text.  The page carries a Content-Security-Policy
-- that allows no script and no load from anywhere, so that a value that did
-- get through could do nothing.
-- ---------------------------------------------------------------------------

CREATE FUNCTION ato.html_escape(value text)
RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
RETURN replace(replace(replace(replace(replace(value, '&', '&amp;'), '<', '&lt;'), '>', '&gt;'), '"', '&quot;'), '''', '&#39;');
COMMENT ON FUNCTION ato.html_escape(text) IS
    'The text with & < > " and '' replaced by their HTML entities: safe in an element and in a quoted attribute';
REVOKE ALL ON FUNCTION ato.html_escape(text) FROM PUBLIC;

-- The attack curve: attempts and successes per minute (per 5, 15, 60 ...
-- minutes when the attack is longer than 12 hours), with the opening and the
-- containment marked.
CREATE FUNCTION ato.report_attack_curve(incident ato.incidents, minutes jsonb)
RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
SET timezone = 'UTC'
AS $$
DECLARE
    first_at timestamptz;
    last_at timestamptz;
    step integer;
    buckets integer;
    top bigint;
    w constant integer := 900;
    h constant integer := 260;
    left_ constant integer := 50;
    bottom constant integer := 230;
    plot_h constant integer := 200;
    bar numeric;
    svg text;
    marks text := '';
    x numeric;
BEGIN
    SELECT min((m ->> 'at')::timestamptz), max((m ->> 'at')::timestamptz) INTO first_at, last_at
      FROM jsonb_array_elements(minutes) m;
    IF first_at IS NULL THEN
        RETURN '<p class="empty">No login attempts in the incident''s window.</p>';
    END IF;
    first_at := date_trunc('minute', first_at);
    last_at := greatest(last_at, coalesce(incident.marked_at, incident.opened_at), incident.opened_at);
    -- the step: a minute, or the first of 5, 15, 60, 240, 1440 minutes that
    -- keeps the curve under 720 bars
    step := (SELECT s FROM unnest(ARRAY[1, 5, 15, 60, 240, 1440]) s
              WHERE extract(epoch FROM last_at - first_at) / 60 / s < 720 ORDER BY s LIMIT 1);
    step := coalesce(step, 1440);
    buckets := floor(extract(epoch FROM last_at - first_at) / 60 / step)::integer + 1;
    bar := (w - left_ - 10)::numeric / buckets;
    WITH b AS (
        SELECT floor(extract(epoch FROM (m ->> 'at')::timestamptz - first_at) / 60 / step)::integer AS k,
               (m ->> 'a')::bigint AS a, (m ->> 's')::bigint AS s
          FROM jsonb_array_elements(minutes) m)
    SELECT jsonb_agg(jsonb_build_object('k', c.k, 'a', c.a, 's', c.s) ORDER BY c.k), max(c.a)
      INTO minutes, top
      FROM (SELECT b.k, sum(b.a) AS a, sum(b.s) AS s FROM b GROUP BY b.k) c;
    SELECT string_agg(
               format('<rect class="attempts" x="%s" y="%s" width="%s" height="%s"><title>%s: %s attempts, %s successes</title></rect>',
                      round(left_ + k * bar, 2), round(bottom - attempts::numeric * plot_h / top, 2),
                      greatest(round(bar - 0.5, 2), 0.5), round(attempts::numeric * plot_h / top, 2),
                      to_char(first_at + make_interval(mins => k * step), 'YYYY-MM-DD HH24:MI'), attempts, successes)
               || CASE WHEN successes > 0 THEN
                      format('<rect class="successes" x="%s" y="%s" width="%s" height="%s"/>',
                             round(left_ + k * bar, 2), round(bottom - successes::numeric * plot_h / top, 2),
                             greatest(round(bar - 0.5, 2), 0.5), greatest(round(successes::numeric * plot_h / top, 2), 1))
                    ELSE '' END, '' ORDER BY k)
      INTO svg
      FROM (SELECT (c ->> 'k')::integer AS k, (c ->> 'a')::bigint AS attempts, (c ->> 's')::bigint AS successes
              FROM jsonb_array_elements(minutes) c) counts;
    x := round(left_ + extract(epoch FROM incident.opened_at - first_at) / 60 / step * bar, 2);
    marks := format('<line class="opened" x1="%s" y1="20" x2="%s" y2="%s"/><text x="%s" y="14" class="mark" text-anchor="%s">opened %s</text>',
                    x, x, bottom, x, CASE WHEN x > w * 0.6 THEN 'end' ELSE 'start' END, to_char(incident.opened_at, 'HH24:MI:SS'));
    IF incident.marked_at IS NOT NULL THEN
        x := round(left_ + extract(epoch FROM incident.marked_at - first_at) / 60 / step * bar, 2);
        marks := marks || format('<line class="contained" x1="%s" y1="20" x2="%s" y2="%s"/><text x="%s" y="%s" class="mark contained-label" text-anchor="%s">contained %s</text>',
                                 x, x, bottom, x, bottom + 28, CASE WHEN x > w * 0.6 THEN 'end' ELSE 'start' END,
                                 to_char(incident.marked_at, 'HH24:MI:SS'));
    END IF;
    RETURN format('<svg xmlns="http://www.w3.org/2000/svg" id="attack-curve" role="img" viewBox="0 0 %s %s" width="100%%" preserveAspectRatio="xMinYMin meet">'
                  '<title>Login attempts and successes per %s</title>'
                  '<line class="axis" x1="%s" y1="%s" x2="%s" y2="%s"/><line class="axis" x1="%s" y1="20" x2="%s" y2="%s"/>'
                  '<text x="%s" y="30" class="tick" text-anchor="end">%s</text><text x="%s" y="%s" class="tick" text-anchor="end">0</text>'
                  '<text x="%s" y="%s" class="tick">%s</text><text x="%s" y="%s" class="tick" text-anchor="end">%s</text>'
                  '%s%s</svg>',
                  w, h + 10, CASE step WHEN 1 THEN 'minute' ELSE step || ' minutes' END,
                  left_, bottom, w - 10, bottom, left_, left_, bottom,
                  left_ - 4, top, left_ - 4, bottom,
                  left_, bottom + 14, to_char(first_at, 'YYYY-MM-DD HH24:MI'),
                  w - 10, bottom + 14, to_char(first_at + make_interval(mins => (buckets - 1) * step), 'YYYY-MM-DD HH24:MI'),
                  svg, marks);
END;
$$;
COMMENT ON FUNCTION ato.report_attack_curve(ato.incidents, jsonb) IS
    'For ato.incident_report(): the SVG bar chart of login attempts and successes per minute (from [{"at", "a", "s"}] per minute; coarser past 12 hours) from the first attempt, with the opening and containment marked';
REVOKE ALL ON FUNCTION ato.report_attack_curve(ato.incidents, jsonb) FROM PUBLIC;

-- Horizontal bars, one per label (already escaped by the caller's query).
CREATE FUNCTION ato.report_bars(title text, items jsonb)
RETURNS text
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE WHEN jsonb_array_length(items) = 0 THEN '<p class="empty">None.</p>' ELSE
           format('<svg xmlns="http://www.w3.org/2000/svg" class="bars" role="img" viewBox="0 0 520 %s" width="520" height="%s"><title>%s</title>%s</svg>',
                  jsonb_array_length(items) * 22 + 4, jsonb_array_length(items) * 22 + 4, ato.html_escape(title),
                  string_agg(format('<text x="0" y="%s" class="label">%s</text><rect class="bar" x="180" y="%s" width="%s" height="16"/><text x="%s" y="%s" class="count">%s</text>',
                                    n * 22 - 6, ato.html_escape(left(i ->> 'label', 28)), n * 22 - 18,
                                    greatest(round((i ->> 'count')::numeric * 200 / max_count, 1), 1),
                                    186 + greatest(round((i ->> 'count')::numeric * 200 / max_count, 1), 1), n * 22 - 6,
                                    ato.html_escape(i ->> 'count') || coalesce(' (' || ato.html_escape(i ->> 'extra') || ')', '')),
                             '' ORDER BY n)) END
      FROM jsonb_array_elements(items) WITH ORDINALITY AS x(i, n),
           LATERAL (SELECT max((j ->> 'count')::numeric) AS max_count FROM jsonb_array_elements(items) j) m;
$$;
COMMENT ON FUNCTION ato.report_bars(text, jsonb) IS
    'For ato.incident_report(): an SVG of horizontal bars from [{"label", "count", "extra"}], every text escaped';
REVOKE ALL ON FUNCTION ato.report_bars(text, jsonb) FROM PUBLIC;

CREATE FUNCTION ato.incident_report(incident_id uuid, max_timeline_rows integer DEFAULT 500)
RETURNS text
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET timezone = 'UTC'
AS $$
DECLARE
    incident ato.incidents := ato.check_incident('incident_report', incident_id);
    -- its first accounts and those added since, not those released
    in_scope text[] := ato.incident_accounts_in_scope(incident_id);
    scope record;
    minutes jsonb;
    ts constant text := 'YYYY-MM-DD HH24:MI:SS';
    html text;
    summary text;
    countries jsonb;
    networks jsonb;
    timeline text;
    timeline_total bigint;
    timeline_events bigint;
    scope_rows text;
    agents text;
    outstanding text;
    notices text;
    n_attempts bigint;
    n_successes bigint;
    owed bigint;
    unsent bigint;
BEGIN
    IF max_timeline_rows IS NULL OR max_timeline_rows NOT BETWEEN 1 AND 100000 THEN
        RAISE EXCEPTION 'incident_report: max_timeline_rows must be 1 to 100000'
            USING ERRCODE = CASE WHEN max_timeline_rows IS NULL THEN 'null_value_not_allowed' ELSE 'invalid_parameter_value' END,
                  HINT = 'It bounds the timeline''s rows on the page (the attack curve counts every event); the default is 500.';
    END IF;
    SELECT * INTO scope FROM ato.incident_scope(incident.id);
    -- the window's logins read once, in one statement: per minute, per
    -- country, network and user agent
    WITH l AS MATERIALIZED (
        SELECT (v.e ->> 'occurred_at')::timestamptz AS at, v.e ->> 'outcome' AS outcome,
               v.e ->> 'country_code' AS country, coalesce(nullif(concat_ws(' ', 'AS' || (v.e ->> 'asn'), v.e ->> 'as_org'), ''),
                   set_masklen((v.e ->> 'ip_address')::inet,
                               CASE WHEN family((v.e ->> 'ip_address')::inet) = 4 THEN 24 ELSE 48 END)::cidr::text) AS net,
               left(v.e ->> 'user_agent', 300) AS agent
          FROM ato.incident_events(incident.id) v WHERE v.event_table = 'login_events')
    SELECT (SELECT count(*) FROM l), (SELECT count(*) FROM l WHERE l.outcome = 'success'),
           (SELECT coalesce(jsonb_agg(jsonb_build_object('at', m.at, 'a', m.a, 's', m.s)), '[]')
              FROM (SELECT date_trunc('minute', l.at) AS at, count(*) AS a, count(*) FILTER (WHERE l.outcome = 'success') AS s
                      FROM l GROUP BY 1) m),
           (SELECT coalesce(jsonb_agg(jsonb_build_object('label', c.label, 'count', c.n, 'extra', c.ok || ' ok') ORDER BY c.n DESC, c.label), '[]')
              FROM (SELECT coalesce(l.country, 'unknown') AS label, count(*) AS n, count(*) FILTER (WHERE l.outcome = 'success') AS ok
                      FROM l GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 15) c),
           (SELECT coalesce(jsonb_agg(jsonb_build_object('label', c.label, 'count', c.n, 'extra', c.ok || ' ok') ORDER BY c.n DESC, c.label), '[]')
              FROM (SELECT coalesce(l.net, 'unknown') AS label, count(*) AS n, count(*) FILTER (WHERE l.outcome = 'success') AS ok
                      FROM l GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 15) c),
           (SELECT string_agg(format('<tr><td>%s</td><td>%s</td><td>%s</td></tr>', ato.html_escape(a.agent), a.n, a.ok),
                              '' ORDER BY a.n DESC, a.agent)
              FROM (SELECT coalesce(l.agent, '(none)') AS agent, count(*) AS n, count(*) FILTER (WHERE l.outcome = 'success') AS ok
                      FROM l GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 10) a)
      INTO n_attempts, n_successes, minutes, countries, networks, agents;

    -- the timeline: the response's own items all, the failed logins and the
    -- other events (successes, account changes) each up to the limit
    SELECT string_agg(format('<tr class="%s"><td class="at">%s</td><td>%s</td><td class="accounts">%s</td><td>%s</td></tr>',
                             CASE WHEN t.kind = 'contained' THEN 'contained'
                                  WHEN t.kind = 'incident opened' THEN 'opened'
                                  WHEN t.kind LIKE 'login %' OR t.kind = 'account change' THEN 'event'
                                  ELSE 'response' END,
                             to_char(t.at, ts), ato.html_escape(t.kind),
                             ato.html_escape(CASE WHEN cardinality(t.accounts) > 5
                                                  THEN array_to_string(t.accounts[1:5], ', ') || format(' and %s more', cardinality(t.accounts) - 5)
                                                  ELSE array_to_string(t.accounts, ', ') END),
                             ato.html_escape(t.detail)), '' ORDER BY t.n)
                FILTER (WHERE NOT (t.kind LIKE 'login %' OR t.kind = 'account change') OR t.nk <= max_timeline_rows),
           count(*), count(*) FILTER (WHERE t.kind LIKE 'login %' OR t.kind = 'account change')
      INTO timeline, timeline_total, timeline_events
      FROM (SELECT x.*, row_number() OVER (PARTITION BY x.kind = 'login failure', x.kind LIKE 'login %' OR x.kind = 'account change'
                                           ORDER BY x.n) AS nk
              FROM ato.incident_timeline(incident.id) WITH ORDINALITY AS x(at, kind, accounts, detail, ref, n)) t;

    SELECT string_agg(format('<tr><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td></tr>',
                             ato.html_escape(u), CASE WHEN f.suspended THEN 'suspended' ELSE '' END,
                             ato.html_escape(concat_ws(', ', CASE WHEN f.password_reset_required THEN 'password reset' END,
                                                       CASE WHEN f.mfa_reenrollment_required THEN 'MFA re-enrolment' END,
                                                       CASE WHEN f.reauth_required THEN 'sign in again' END)),
                             ato.html_escape(coalesce(n.channel, 'not written')),
                             CASE WHEN n.delivered_at IS NOT NULL THEN 'sent ' || to_char(n.delivered_at, ts)
                                  WHEN o.status IS NOT NULL THEN ato.html_escape(o.status) ELSE '' END),
                      '' ORDER BY u)
      INTO scope_rows
      FROM unnest(in_scope) u
      LEFT JOIN ato.account_flags f ON f.user_id = u AND f.incident_id = incident.id
      LEFT JOIN ato.user_notifications n ON n.incident_id = incident.id AND n.user_id = u
      LEFT JOIN ato.notification_outbox o ON o.incident_id = incident.id AND o.user_id = u;

    SELECT count(*), string_agg(format('<tr><td>%s</td><td>%s</td><td class="accounts">%s</td><td>%s</td><td>%s</td><td>%s</td></tr>',
                                       ato.html_escape(d.item), ato.html_escape(d.name),
                                       ato.html_escape(array_to_string(d.user_ids, ', ')), ato.html_escape(d.how),
                                       ato.html_escape(d.owner_contact), to_char(d.owed_since, ts)),
                                '' ORDER BY d.item, d.name, d.user_ids)
      INTO owed, outstanding
      FROM ato.downstream_outstanding d WHERE d.incident_id = incident.id;
    SELECT count(*), string_agg(format('<tr><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td></tr>',
                                       ato.html_escape(o.user_id), ato.html_escape(o.channel), ato.html_escape(o.status),
                                       o.attempts, ato.html_escape(o.last_error)), '' ORDER BY o.user_id)
      INTO unsent, notices
      FROM ato.notification_outbox o WHERE o.incident_id = incident.id AND o.status <> 'sent';

    summary := format('<dl class="summary">'
                      '<div><dt>Attempts</dt><dd>%s</dd></div><div><dt>Successes</dt><dd class="bad">%s</dd></div>'
                      '<div><dt>Accounts</dt><dd>%s</dd></div><div><dt>Countries</dt><dd>%s</dd></div>'
                      '<div><dt>Time to contain</dt><dd>%s</dd></div><div><dt>Notices sent</dt><dd>%s of %s</dd></div>'
                      '<div><dt>Downstream owed</dt><dd class="%s">%s</dd></div></dl>',
                      n_attempts, n_successes, cardinality(in_scope),
                      (SELECT count(*) FROM jsonb_array_elements(countries) c WHERE c ->> 'label' <> 'unknown'),
                      coalesce(ato.html_escape(date_trunc('second', incident.marked_at - incident.opened_at)::text), 'not yet'),
                      (SELECT count(*) FROM ato.user_notifications n WHERE n.incident_id = incident.id AND n.delivered_at IS NOT NULL),
                      cardinality(in_scope),
                      CASE WHEN owed > 0 THEN 'bad' ELSE 'good' END, owed);

    html := '<!DOCTYPE html>' || E'\n' || '<html lang="en"><head><meta charset="utf-8">'
        || '<meta http-equiv="Content-Security-Policy" content="default-src ''none''; style-src ''unsafe-inline''; img-src data:">'
        || '<meta name="viewport" content="width=device-width, initial-scale=1">'
        || format('<title>Incident %s</title>', incident.id)
        || '<style>'
        || 'body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#1b1f24;background:#f6f7f9}'
        || 'header{background:#1b1f24;color:#fff;padding:18px 28px}header h1{margin:0;font-size:20px}header p{margin:4px 0 0;color:#c9d1d9}'
        || 'main{padding:18px 28px;max-width:1200px}section{background:#fff;border:1px solid #d8dee4;border-radius:6px;padding:14px 18px;margin:0 0 16px}'
        || 'h2{font-size:16px;margin:0 0 10px}.summary{display:flex;flex-wrap:wrap;gap:10px;margin:0}.summary div{background:#fff;border:1px solid #d8dee4;border-radius:6px;padding:8px 14px;min-width:110px}'
        || 'dt{font-size:12px;color:#57606a}dd{margin:0;font-size:22px;font-weight:600}.bad{color:#cf222e}.good{color:#1a7f37}'
        || 'table{border-collapse:collapse;width:100%;font-size:13px}th,td{text-align:left;padding:3px 8px;border-bottom:1px solid #eaeef2;vertical-align:top;overflow-wrap:anywhere}'
        || 'th{background:#f6f8fa}tr.event td{color:#57606a}tr.contained td{background:#dafbe1;font-weight:600}tr.opened td{background:#fff8c5;font-weight:600}'
        || 'td.at{white-space:nowrap;font-variant-numeric:tabular-nums}.cols{display:flex;flex-wrap:wrap;gap:16px}.cols section{flex:1;min-width:540px}'
        || 'rect.attempts{fill:#8c959f}rect.successes{fill:#cf222e}rect.bar{fill:#0969da}line.axis{stroke:#57606a}'
        || 'line.opened{stroke:#bf8700;stroke-width:2;stroke-dasharray:4 3}line.contained{stroke:#1a7f37;stroke-width:2}'
        || 'text{font:11px system-ui,sans-serif;fill:#1b1f24}text.mark{font-weight:600}text.contained-label{fill:#1a7f37}.legend span{margin-right:14px}'
        || '.swatch{display:inline-block;width:10px;height:10px;margin-right:4px}.empty{color:#57606a}.note{color:#57606a;font-size:12px}'
        || '</style></head><body>'
        || format('<header><h1>Incident %s</h1><p>%s &middot; opened %s by %s &middot; status %s%s</p></header>',
                  incident.id, ato.html_escape(incident.reason), to_char(incident.opened_at, ts),
                  ato.html_escape(incident.opened_by), ato.html_escape(incident.status),
                  coalesce(' &middot; shard ' || ato.html_escape(ato.shard_name()), ''))
        || '<main>' || summary
        || '<section id="curve"><h2>Attack curve</h2>'
        || '<p class="legend"><span><i class="swatch" style="background:#8c959f"></i>attempts</span>'
        || '<span><i class="swatch" style="background:#cf222e"></i>successes</span>'
        || '<span><i class="swatch" style="background:#bf8700"></i>opened</span>'
        || '<span><i class="swatch" style="background:#1a7f37"></i>contained</span></p>'
        || ato.report_attack_curve(incident, minutes) || '</section>'
        || '<div class="cols"><section id="countries"><h2>Countries</h2>' || ato.report_bars('Login attempts by country', countries) || '</section>'
        || '<section id="networks"><h2>Networks</h2>' || ato.report_bars('Login attempts by network', networks) || '</section></div>'
        || '<section id="agents"><h2>User agents</h2><table><thead><tr><th>User agent</th><th>Attempts</th><th>Successes</th></tr></thead><tbody>'
        || coalesce(agents, '') || '</tbody></table></section>'
        || format('<section id="scope"><h2>Scope: %s accounts, %s attacker networks</h2>', cardinality(in_scope),
                  cardinality(scope.attacker_networks))
        || format('<p>Window %s to %s. Networks: %s.</p>', to_char(scope.window_from, ts), to_char(scope.window_to, ts),
                  coalesce(nullif(ato.html_escape(array_to_string(scope.attacker_networks::text[], ', ')), ''), 'none known'))
        || '<table><thead><tr><th>Account</th><th>Suspended</th><th>Must</th><th>Notice channel</th><th>Notice</th></tr></thead><tbody>'
        || coalesce(scope_rows, '') || '</tbody></table></section>'
        || format('<section id="outstanding"><h2>Outstanding: %s downstream, %s notices not sent</h2>', owed, unsent)
        || CASE WHEN owed > 0 THEN '<table><thead><tr><th>Item</th><th>Where</th><th>Accounts</th><th>What it takes</th><th>Owner</th><th>Owed since</th></tr></thead><tbody>'
                                   || outstanding || '</tbody></table>'
                ELSE '<p class="empty">Nothing owed downstream.</p>' END
        || CASE WHEN unsent > 0 THEN '<h2>Notices not sent</h2><table><thead><tr><th>Account</th><th>Channel</th><th>Status</th><th>Attempts</th><th>Last error</th></tr></thead><tbody>'
                                    || notices || '</tbody></table>'
                ELSE '' END
        || '</section>'
        || format('<section id="timeline"><h2>Timeline (%s items)</h2>', timeline_total)
        || CASE WHEN timeline_events > max_timeline_rows
                THEN format('<p class="note">Of %s events, the first %s failed logins and the first %s other events are shown; the response''s steps all are.</p>',
                            timeline_events, max_timeline_rows, max_timeline_rows)
                ELSE '' END
        || '<table><thead><tr><th>When (UTC)</th><th>What</th><th>Accounts</th><th>Detail</th></tr></thead><tbody>'
        || coalesce(timeline, '') || '</tbody></table></section>'
        || format('<p class="note">Written %s by ato_response for %s.</p>', to_char(now(), ts), ato.html_escape(session_user))
        || '</main></body></html>' || E'\n';
    RETURN html;
END;
$$;
COMMENT ON FUNCTION ato.incident_report(uuid, integer) IS
    'The incident as one self-contained HTML page (inline SVG and CSS, no script, no external asset, every value escaped): the attack curve (attempts and successes per minute, the opening and containment marked), countries, networks and user agents, scope and each account''s flags and notice, what is outstanding downstream and in the outbox, and the timeline (at most max_timeline_rows failed logins and as many other events; the response''s steps all); psql -XAt -c "SELECT ato.incident_report(...)" > report.html';
REVOKE ALL ON FUNCTION ato.incident_report(uuid, integer) FROM PUBLIC;
