-- example/schema.sql: the example shop's own tables, created and registered by their owner
-- (run as the role example/grants.sql calls app_owner), and the application's grants on them:
--   psql -v app=shop_app -f example/schema.sql
CREATE SCHEMA shop;
CREATE TABLE shop.users (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    login text NOT NULL UNIQUE,
    password_hash text NOT NULL
);
-- sessions and refresh tokens carry the account's login name, as ato_response's user_id
CREATE TABLE shop.sessions (
    id text PRIMARY KEY,
    user_id text NOT NULL,
    issued_at timestamptz NOT NULL,
    ip inet,
    revoked boolean NOT NULL DEFAULT false,
    revoked_reason text
);
CREATE TABLE shop.refresh_tokens (
    token text PRIMARY KEY,
    user_id text NOT NULL,
    issued_at timestamptz NOT NULL,
    revoked boolean NOT NULL DEFAULT false
);
CREATE TABLE shop.mfa_factors (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id text NOT NULL,
    kind text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
GRANT USAGE ON SCHEMA shop TO :"app";
GRANT SELECT, INSERT ON shop.users, shop.sessions, shop.refresh_tokens, shop.mfa_factors TO :"app";

-- an incident marks the sessions and tokens of its accounts, and deletes the MFA factors
-- enrolled since the attack began (the attacker's)
SELECT ato.register_revocation_target('shop.sessions', 'user_id', 'revoke', state_column => 'revoked',
                                      reason_column => 'revoked_reason');
SELECT ato.register_revocation_target('shop.refresh_tokens', 'user_id', 'revoke', state_column => 'revoked');
SELECT ato.register_revocation_target('shop.mfa_factors', 'user_id', 'delete', created_column => 'created_at');
