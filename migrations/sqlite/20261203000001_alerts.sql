-- Risk alerts to a community's moderators (off unless a moderator names an alert chat).
-- alert_chat: the chat (same platform) that receives alerts about risk seen in this chat;
-- alert_text: whether alerts quote the person's words (off unless the community opts in);
-- alert_code / alert_code_at: a one-time code that links an alert chat (Telegram), valid
-- for an hour.
ALTER TABLE chat_settings ADD COLUMN alert_chat TEXT;
ALTER TABLE chat_settings ADD COLUMN alert_text INTEGER NOT NULL DEFAULT 0;
ALTER TABLE chat_settings ADD COLUMN alert_code TEXT;
ALTER TABLE chat_settings ADD COLUMN alert_code_at INTEGER;
