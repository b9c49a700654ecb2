-- Version 7: the web console's sessions, kept in the catalog so that every
-- node sharing it knows them, and a sign-out on one ends the session on
-- all. Only a hash of each session's id is stored: the id is what the
-- browser's cookie carries, and a copy of the catalog must sign no one in.

CREATE TABLE vigil_console_session (
    id_hash      TEXT PRIMARY KEY,
    created_at   BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL,
    -- The browser's User-Agent at sign-in, shortened: for people looking
    -- at who is signed in, never for a decision.
    user_agent   TEXT NOT NULL
);
