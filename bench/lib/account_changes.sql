-- account_changes.sql -- the account changes that follow the logins with
-- an id above :before in ato.audit_events: one successful login in eight
-- followed, within half an hour, by a change of one of six kinds (never
-- later than now: the trigger refuses what is beyond max_future_skew).
-- Shared by detect/load.sql and bulk_load.sql.

INSERT INTO ato.audit_events (actor_id, event_type, occurred_at, ip_address)
SELECT user_id,
       (ARRAY['user.email_changed', 'user.password_changed', 'billing.modified', 'user.mfa.factor.activate',
              'app.viewed', 'user.session.start'])[1 + abs(hashint8(id)) % 6],
       least(occurred_at + abs(hashint8(id + 1)) % 1800 * interval '1 second', now()), ip_address
  FROM ato.login_events
 WHERE id > :before AND outcome = 'success' AND abs(hashint8(id)) % 8 = 0;
