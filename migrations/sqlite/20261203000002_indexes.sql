-- An index for every per-message and periodic query, so that none of them reads a whole
-- table as the database grows: a person's sessions (message counts for rate limits,
-- /forget), open sessions by activity (the idle sweep), replies waiting to be sent
-- (recovery), rating prompts by session and by turn (reads and cascading deletes), and
-- handled events by age (pruning).
CREATE INDEX sessions_by_user ON sessions (user_id);
CREATE INDEX sessions_open_by_activity ON sessions (last_activity_at) WHERE stage != 'closed';
CREATE INDEX turns_pending ON turns (id) WHERE delivery = 'pending';
CREATE INDEX rating_prompts_by_session ON rating_prompts (session_id);
CREATE INDEX rating_prompts_by_first_turn ON rating_prompts (first_turn_id);
CREATE INDEX rating_prompts_by_second_turn ON rating_prompts (second_turn_id);
CREATE INDEX processed_events_by_age ON processed_events (processed_at);
CREATE INDEX inbox_handled_by_age ON inbox (handled_at) WHERE handled_at IS NOT NULL;
