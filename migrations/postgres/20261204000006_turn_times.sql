-- A person's messages by time, for the per-minute message limit: counting the last
-- minute reads that minute's rows only, however long the conversation.
CREATE INDEX turns_user_by_time ON turns (session_id, created_at) WHERE source = 'user';
