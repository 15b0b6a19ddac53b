"""example/shop.py: how an application uses ato_response (the README's integration guide).

A shop with its own users, sessions, refresh tokens and MFA factors (example/schema.sql), signed in
as a least-privilege role (example/grants.sql's "app"):

- login(): checks the password, then asks ato.login_gate() in the transaction that issues the
  session, records the attempt with the outcome the README's table says, and stamps the session
  with the gate's issued_at (the database's clock).
- check_request() / check_requests(): on each request, ato.session_status() (or
  ato.session_statuses() for many at once) says whether a session is refused, and why.
- RevocationCache: a cache of revoked accounts kept by LISTEN on the revocation channel, reading
  what each notification points to with ato.revocations_since(), and catching up after a
  reconnect from the last position it read (a NOTIFY is lost to whoever is not connected).

Needs Debian's python3-psycopg (psycopg 3).
"""
import hashlib
import secrets
import select

import psycopg
from psycopg import sql


def connect(dsn, **kwargs):
    # text comes back as str whatever the database's encoding (psycopg returns bytes from an
    # SQL_ASCII database unless the client encoding is set)
    return psycopg.connect(dsn, client_encoding="utf8", **kwargs)


def password_hash(password):
    return hashlib.sha256(password.encode()).hexdigest()


class Shop:
    def __init__(self, dsn):
        self.db = connect(dsn)

    def sign_up(self, login, password):
        with self.db.transaction():
            self.db.execute("INSERT INTO shop.users (login, password_hash) VALUES (%s, %s)",
                            (login, password_hash(password)))

    def login(self, login, password, ip):
        """Returns (session_id, refresh_token), or (None, step) when the login is refused."""
        with self.db.transaction():
            user = self.db.execute("SELECT password_hash FROM shop.users WHERE login = %s",
                                   (login,)).fetchone()
            if user is None or user[0] != password_hash(password):
                # an unknown account is recorded under the name as typed: sprays try those
                metadata = '{"unknown_account": true}' if user is None else None
                self.db.execute("SELECT ato.record_login(%s, %s, 'failure', metadata => %s)",
                                (login, ip, metadata))
                return None, "wrong_password"
            # after the password check, so that a wrong password reveals nothing
            step, steps, issued_at = self.db.execute(
                "SELECT step, steps, issued_at FROM ato.login_gate(%s, %s)", (login, ip)).fetchone()
            if step != "ok":
                outcome = "failure" if step in ("suspended", "blocked_network") else "challenge"
                self.db.execute("SELECT ato.record_login(%s, %s, %s, metadata => jsonb_build_object('step', %s::text))",
                                (login, ip, outcome, step))
                return None, step
            session_id, token = secrets.token_hex(16), secrets.token_hex(16)
            self.db.execute("INSERT INTO shop.sessions (id, user_id, issued_at, ip) VALUES (%s, %s, %s, %s)",
                            (session_id, login, issued_at, ip))
            self.db.execute("INSERT INTO shop.refresh_tokens (token, user_id, issued_at) VALUES (%s, %s, %s)",
                            (token, login, issued_at))
            self.db.execute("SELECT ato.record_login(%s, %s, 'success')", (login, ip))
            return session_id, token

    def complete_step(self, login, step, method):
        with self.db.transaction():
            return self.db.execute("SELECT ato.complete_step(%s, %s, %s, %s)",
                                   (login, step, method, login)).fetchone()[0]

    def check_request(self, session_id):
        """(refused, verdict) of one session: one round trip, in the query that reads the session."""
        with self.db.transaction():
            row = self.db.execute(
                "SELECT st.refused, st.verdict FROM shop.sessions s,"
                "       ato.session_status(s.user_id, s.issued_at, s.id) st WHERE s.id = %s",
                (session_id,)).fetchone()
        return (True, "unknown_session") if row is None else (row[0], row[1])

    def check_requests(self, session_ids):
        """{session_id: (refused, verdict)} for many sessions in one call."""
        with self.db.transaction():
            rows = self.db.execute(
                "WITH s AS (SELECT s.id, s.user_id, s.issued_at FROM shop.sessions s WHERE s.id = ANY(%s))"
                " SELECT st.session_id, st.refused, st.verdict"
                "   FROM ato.session_statuses((SELECT array_agg(user_id ORDER BY id) FROM s),"
                "                             (SELECT array_agg(issued_at ORDER BY id) FROM s),"
                "                             (SELECT array_agg(id ORDER BY id) FROM s)) st",
                (list(session_ids),)).fetchall()
        return {r[0]: (r[1], r[2]) for r in rows}


class RevocationCache:
    """Revoked accounts, from the outbox; survives reconnects by remembering its position."""

    def __init__(self, dsn, channel="ato_revocations"):
        self.dsn, self.channel = dsn, channel
        self.position = 0
        self.revoked = {}           # user_id -> revoked_at
        self.connect()

    def connect(self):
        self.db = connect(self.dsn, autocommit=True)
        self.notified = []
        self.db.add_notify_handler(lambda n: self.notified.append(n.payload))
        self.db.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self.channel)))
        self.catch_up()             # what was announced while we were away

    def catch_up(self):
        while True:
            rows = self.db.execute("SELECT position, user_id, revoked_at FROM ato.revocations_since(%s, 100)",
                                   (self.position,)).fetchall()
            if not rows:
                return
            for position, user_id, revoked_at in rows:
                self.revoked[user_id] = revoked_at
                self.position = max(self.position, position)

    def poll(self, timeout=0.5):
        """Waits up to timeout for a notification (a position, never an account id), then reads on."""
        if select.select([self.db.fileno()], [], [], timeout)[0]:
            self.db.execute("SELECT")       # delivers what arrived to the handler
        if self.notified:
            self.notified.clear()
            self.catch_up()

    def close(self):
        self.db.close()
