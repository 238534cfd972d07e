-- The token revocation generation: bumped in the transaction of every
-- revocation, so that a server caching tokens can tell, by reading one row,
-- that one was revoked (see revocations.go).
INSERT INTO meta (key, value) VALUES ('token_generation', '0');
