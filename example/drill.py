"""example/drill.py: an incident drill against the example shop (example/shop.py), run by the
test suite (test/t/010_example_app.pl).

300 users sign in from home; an attacker from 5.188.10.0/24 takes over 40 of them (50 sessions);
a responder finds them with ato.cidr_scope() and revokes them in one call, while logins go on;
the cache of revoked accounts, disconnected meanwhile, catches up; every attacker session and
token is refused, every bystander's works, the victims re-enrol MFA and sign in again.

    python3 example/drill.py APP_DSN CACHE_DSN ONCALL_DSN
Prints what it checks and the cost of a session check; exits 1 if anything is wrong.
"""
import sys
import time

import psycopg

from shop import RevocationCache, Shop

USERS, VICTIMS = 300, 40
ATTACKER = "5.188.10.{}"
failures = []


def check(what, ok):
    print(("ok      " if ok else "FAILED  ") + what)
    if not ok:
        failures.append(what)


def percentile(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(p * len(values)))]


def main(app_dsn, cache_dsn, oncall_dsn):
    shop = Shop(app_dsn)
    users = [f"user{i:03d}@example.com" for i in range(USERS)]
    victims = users[:VICTIMS]
    for i, u in enumerate(users):
        shop.sign_up(u, "pw-" + u)
    home = {u: shop.login(u, "pw-" + u, f"81.2.69.{i % 200 + 1}")[0] for i, u in enumerate(users)}
    check("300 users signed in from home", all(home.values()))

    # the attacker: a few wrong guesses, then the right passwords; ten victims get two sessions
    for u in users[VICTIMS:VICTIMS + 5]:
        shop.login(u, "guess", ATTACKER.format(7))
    stolen = []
    for i, u in enumerate(victims):
        for n in range(2 if i < 10 else 1):
            session, token = shop.login(u, "pw-" + u, ATTACKER.format(10 + n))
            stolen.append((u, session, token))
    check("the attacker holds 50 sessions of 40 accounts", len(stolen) == 50 and all(s for _, s, _ in stolen))

    cache = RevocationCache(cache_dsn)
    cache.close()                   # away during the incident: it must catch up

    oncall = psycopg.connect(oncall_dsn, autocommit=True)
    accounts = [r[0] for r in oncall.execute(
        "SELECT user_id FROM ato.cidr_scope('{5.188.10.0/24}', now() - interval '1 hour')"
        " ORDER BY 1").fetchall()]
    check("cidr_scope finds exactly the 40 victims", accounts == sorted(victims))
    incident = oncall.execute(
        "SELECT ato.revoke_incident(%s, 'drill: takeover from 5.188.10.0/24',"
        " reauth_required => true, mfa_reenrollment_required => true)", (accounts,)).fetchone()[0]
    progress = oncall.execute(
        "SELECT target, rows_touched, mismatched_ids FROM ato.incident_progress WHERE incident_id = %s"
        " ORDER BY target", (incident,)).fetchall()
    check("the incident marked the sessions and tokens of the victims",
          dict((t, r) for t, r, _ in progress) == {"shop.mfa_factors": 0, "shop.refresh_tokens": 90,
                                                   "shop.sessions": 90})

    # every attacker session is refused, one by one and batched, and says why
    verdicts = [shop.check_request(s) for _, s, _ in stolen]
    check("all 50 attacker sessions are refused as revoked", all(v == (True, "revoked") for v in verdicts))
    batch = shop.check_requests([s for _, s, _ in stolen] + list(home.values()))
    check("the batched check agrees", all(batch[s] == (True, "revoked") for _, s, _ in stolen)
          and sum(1 for v in batch.values() if not v[0]) == USERS - VICTIMS)
    with shop.db.transaction():
        tokens = shop.db.execute("SELECT count(*) FROM shop.refresh_tokens WHERE revoked").fetchone()[0]
    check("their refresh tokens (and the victims' own) are revoked", tokens == 90)
    bystanders = [home[u] for u in users[VICTIMS:]]
    check("the 260 bystanders' sessions work", all(shop.check_request(s) == (False, "valid") for s in bystanders))

    # the attacker tries again; the victim signs in, re-enrols MFA and is back
    check("the attacker's next login is asked for a step",
          shop.login(victims[0], "pw-" + victims[0], ATTACKER.format(10))[1] == "mfa_reenrollment_required")
    shop.complete_step(victims[0], "mfa_reenrollment_required", "webauthn")
    shop.complete_step(victims[0], "reauth_required", "webauthn")
    fresh, _ = shop.login(victims[0], "pw-" + victims[0], "81.2.69.1")
    check("after its steps the victim signs in again, and the new session works",
          fresh is not None and shop.check_request(fresh) == (False, "valid"))

    cache = RevocationCache(cache_dsn)
    check("the cache caught up after its reconnect: exactly the 40 victims",
          sorted(cache.revoked) == sorted(victims))

    # and it hears the next revocation through the channel
    oncall.execute("SELECT ato.revoke_incident(%s, 'drill: one more')", ([users[299]],))
    deadline = time.monotonic() + 10
    while users[299] not in cache.revoked and time.monotonic() < deadline:
        cache.poll(0.2)
    check("a listening cache hears the next revocation", users[299] in cache.revoked)

    # the cost of the check on each request, one round trip each and batched
    sessions = list(home.values())
    alone = []
    for s in sessions:
        t = time.perf_counter()
        shop.check_request(s)
        alone.append((time.perf_counter() - t) * 1000)
    t = time.perf_counter()
    shop.check_requests(sessions)
    batched = (time.perf_counter() - t) * 1000
    print(f"session check, one per request ({len(sessions)}): p50 {percentile(alone, 0.5):.3f} ms,"
          f" p99 {percentile(alone, 0.99):.3f} ms, slowest {max(alone):.3f} ms;"
          f" all {len(sessions)} in one call: {batched:.3f} ms ({batched / len(sessions):.4f} ms each)")
    cache.close()
    oncall.close()
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:4]))
