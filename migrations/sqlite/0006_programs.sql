-- Many programs in one install. A program can be archived (hidden from the switcher, its API keys
-- stop working) and restored. Roles belong to a (program, user) membership; install admins manage
-- programs and users and act as admins of every program. `users.program_id` is now the program a
-- user lands on after signing in.
ALTER TABLE programs ADD COLUMN archived_at TEXT;
CREATE UNIQUE INDEX programs_name_unique ON programs (lower(name));

ALTER TABLE users ADD COLUMN install_admin INTEGER NOT NULL DEFAULT 0;

CREATE TABLE program_members (
    program_id  TEXT NOT NULL REFERENCES programs (id),
    user_id     TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role        TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    PRIMARY KEY (program_id, user_id)
);
CREATE INDEX program_members_user ON program_members (user_id);

-- Until now there was one program and admins managed all of it: they keep that.
UPDATE users SET install_admin = 1 WHERE role = 'admin';
INSERT INTO program_members (program_id, user_id, role, created_at)
    SELECT program_id, id, role, created_at FROM users;
ALTER TABLE users DROP COLUMN role;
