-- Single sign-on per organization (veritrail.SSOConfig as JSON; the
-- client secret in it sealed under the master key), distributed by org_id,
-- and users found by the identity their OpenID provider vouches for.
CREATE TABLE sso_configs (
	org_id     bigint PRIMARY KEY REFERENCES orgs (id),
	body       jsonb NOT NULL,
	updated_at bigint NOT NULL
);
CREATE UNIQUE INDEX users_by_oidc ON users (org_id, oidc_issuer, oidc_subject) WHERE oidc_subject <> '';
