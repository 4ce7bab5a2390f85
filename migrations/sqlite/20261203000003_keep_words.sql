-- Whether a person lets Kindred keep their words (/privacy). When not (0), the words of
-- a conversation live only while it is open (the model answers from them) and are
-- erased from it, the person's and Kindred's alike, when it ends; strategies, ratings
-- and survey answers stay. Exports never contain such people's conversations.
ALTER TABLE users ADD COLUMN keep_words INTEGER NOT NULL DEFAULT 1;
