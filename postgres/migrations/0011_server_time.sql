-- Whether the server stamped an event's time because the client sent none:
-- a retry without time is then judged on what the client sent. Not in the
-- envelope, so kept beside the id. NULL (the client sent the time) costs
-- nothing in the row.
ALTER TABLE event_ids ADD COLUMN server_time boolean;
