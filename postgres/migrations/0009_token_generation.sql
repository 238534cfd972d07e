-- Each organization's token revocation generation: bumped in the
-- transaction of every revocation of one of its tokens, so that a node
-- caching tokens learns of a revocation made on any node by reading one
-- row (revocations.go). Keyed by org_id, distributed with the
-- organization's other rows on Citus. An organization without a row has
-- had no revocation (generation 0).
CREATE TABLE token_generations (
	org_id     bigint PRIMARY KEY REFERENCES orgs (id),
	generation bigint NOT NULL
);
