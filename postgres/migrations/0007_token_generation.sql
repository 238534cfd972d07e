-- The token revocation generation: bumped in the transaction of every
-- revocation, so that a node caching tokens learns of a revocation made on
-- any node by reading this one row (revocations.go).
CREATE TABLE token_generation (
	one        boolean PRIMARY KEY DEFAULT true CHECK (one),
	generation bigint  NOT NULL
);
INSERT INTO token_generation (one, generation) VALUES (true, 0);
