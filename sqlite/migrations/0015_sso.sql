-- Single sign-on per organization (veritrail.SSOConfig as JSON; the
-- client secret in it sealed under the master key), and users found by the
-- identity their OpenID provider vouches for.
CREATE TABLE sso_configs (
	org_id     INTEGER PRIMARY KEY REFERENCES orgs (id),
	body       TEXT NOT NULL,
	updated_at INTEGER NOT NULL
);
CREATE UNIQUE INDEX users_by_oidc ON users (org_id, oidc_issuer, oidc_subject) WHERE oidc_subject <> '';
