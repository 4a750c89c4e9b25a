-- Every name each webhook has had (lower case), kept by triggers. The audit log's search by
-- webhook name looks here first and then reads only those webhooks' attempts through their
-- index, instead of walking the attempts table testing every row's name.
CREATE TABLE webhook_names (
    program_id  TEXT NOT NULL,
    webhook_id  TEXT NOT NULL,
    name_lower  TEXT NOT NULL,
    PRIMARY KEY (webhook_id, name_lower)
);
CREATE INDEX webhook_names_program ON webhook_names (program_id, name_lower);

INSERT OR IGNORE INTO webhook_names (program_id, webhook_id, name_lower)
    SELECT program_id, id, lower(name) FROM webhooks;
-- Names recorded on attempts before a rename (this reads the attempts once, at upgrade).
INSERT OR IGNORE INTO webhook_names (program_id, webhook_id, name_lower)
    SELECT DISTINCT program_id, webhook_id, lower(webhook_name) FROM attempts;

CREATE TRIGGER webhook_names_created AFTER INSERT ON webhooks BEGIN
    INSERT OR IGNORE INTO webhook_names (program_id, webhook_id, name_lower)
        VALUES (NEW.program_id, NEW.id, lower(NEW.name));
END;
CREATE TRIGGER webhook_names_renamed AFTER UPDATE OF name ON webhooks BEGIN
    INSERT OR IGNORE INTO webhook_names (program_id, webhook_id, name_lower)
        VALUES (NEW.program_id, NEW.id, lower(NEW.name));
END;
