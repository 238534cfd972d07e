-- The envelope's words were indexed twice for an event with content: in
-- events_tsv_env, and again in events_tsv_all, which holds the envelope's
-- words and the content's. events_tsv_env now holds only the events
-- without content (tsv_all NULL: none stored, or removed by retention or
-- erasure, which set tsv_all to NULL and so add the event here). A search
-- finds an event with content through events_tsv_all and checks its
-- tsv_env on the row (postgres/query.go): every search is a conjunction
-- of words and prefixes, so a match in tsv_env is one in tsv_all, whose
-- words include the envelope's. Fewer index entries written per event;
-- the same answers.
DROP INDEX events_tsv_env;
CREATE INDEX events_tsv_env ON events USING gin (tsv_env) WHERE tsv_all IS NULL;
