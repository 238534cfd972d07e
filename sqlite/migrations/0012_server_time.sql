-- Whether the server stamped an event's time because the client sent none
-- (1; NULL when the client sent it): a retry without time is then judged on
-- what the client sent. Not in the envelope, so kept beside the id.
ALTER TABLE event_ids ADD COLUMN server_time INTEGER;
