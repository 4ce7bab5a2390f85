-- The community (a Discord server) a conversation's chat belongs to, so that a
-- conversation resumed after a restart still reaches its community's alert settings.
ALTER TABLE sessions ADD COLUMN chat_community TEXT;
