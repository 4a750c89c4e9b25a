-- Every name each webhook has had (lower case), kept by a trigger. The audit log's search by
-- webhook name looks here first and then reads only those webhooks' attempts through their
-- index, instead of walking the attempts table testing every row's name.
CREATE TABLE webhook_names (
    program_id  TEXT NOT NULL,
    webhook_id  TEXT NOT NULL,
    name_lower  TEXT NOT NULL,
    PRIMARY KEY (webhook_id, name_lower)
);
CREATE INDEX webhook_names_program ON webhook_names (program_id, name_lower);

INSERT INTO webhook_names (program_id, webhook_id, name_lower)
    SELECT program_id, id, lower(name) FROM webhooks ON CONFLICT DO NOTHING;
-- Names recorded on attempts before a rename (this reads the attempts once, at upgrade).
INSERT INTO webhook_names (program_id, webhook_id, name_lower)
    SELECT DISTINCT program_id, webhook_id, lower(webhook_name) FROM attempts ON CONFLICT DO NOTHING;

CREATE FUNCTION herald_note_webhook_name() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO webhook_names (program_id, webhook_id, name_lower)
        VALUES (NEW.program_id, NEW.id, lower(NEW.name)) ON CONFLICT DO NOTHING;
    RETURN NEW;
END
$$;
CREATE TRIGGER webhook_names_noted AFTER INSERT OR UPDATE OF name ON webhooks
    FOR EACH ROW EXECUTE FUNCTION herald_note_webhook_name();
