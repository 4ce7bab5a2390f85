-- Kindred's state. Times are Unix milliseconds (UTC).
-- Deleting a user removes everything about them through ON DELETE CASCADE: /forget is one DELETE.

CREATE TABLE users (
    id               INTEGER PRIMARY KEY,
    platform         TEXT    NOT NULL,
    platform_user_id TEXT    NOT NULL,
    -- A stable pseudonym used in exports instead of the platform id.
    pseudonym        TEXT    NOT NULL,
    created_at       INTEGER NOT NULL,
    -- Set while a /forget confirmation is pending: the nonce the confirm button must carry.
    forget_nonce     TEXT,
    UNIQUE (platform, platform_user_id)
);

CREATE TABLE sessions (
    id               INTEGER PRIMARY KEY,
    user_id          INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    chat_platform    TEXT    NOT NULL,
    chat_id          TEXT    NOT NULL,
    chat_kind        TEXT    NOT NULL,
    started_at       INTEGER NOT NULL,
    last_activity_at INTEGER NOT NULL,
    ended_at         INTEGER,
    end_reason       TEXT,
    -- checkin_emotion | checkin_problem | checkin_intensity | chatting
    -- | survey_intensity | survey_empathy | survey_relevance | closed
    stage            TEXT    NOT NULL,
    -- A random value that every button of this session carries, so forged presses fail.
    nonce            TEXT    NOT NULL,
    emotion_type     TEXT,
    problem_type     TEXT,
    situation        TEXT,
    intensity_before INTEGER,
    intensity_after  INTEGER,
    empathy          INTEGER,
    relevance        INTEGER,
    bot_replies      INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX sessions_by_chat_user ON sessions (chat_platform, chat_id, user_id, ended_at);

CREATE TABLE turns (
    id                  INTEGER PRIMARY KEY,
    session_id          INTEGER NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    idx                 INTEGER NOT NULL,
    -- seeker | supporter
    speaker             TEXT    NOT NULL,
    text                TEXT    NOT NULL,
    -- user | model | safety: only user and model turns enter the model's context.
    source              TEXT    NOT NULL,
    strategy            TEXT,
    -- JSON array of the 8 strategy probabilities, in ESConv order.
    strategy_probs      TEXT,
    platform_message_id TEXT,
    -- received | pending | delivered | failed
    delivery            TEXT    NOT NULL,
    created_at          INTEGER NOT NULL,
    delivered_at        INTEGER,
    UNIQUE (session_id, idx)
);

CREATE TABLE rating_prompts (
    id                  INTEGER PRIMARY KEY,
    session_id          INTEGER NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    first_turn_id       INTEGER NOT NULL REFERENCES turns (id) ON DELETE CASCADE,
    second_turn_id      INTEGER NOT NULL REFERENCES turns (id) ON DELETE CASCADE,
    platform_message_id TEXT,
    created_at          INTEGER NOT NULL,
    stars               INTEGER CHECK (stars BETWEEN 1 AND 5),
    rated_at            INTEGER
);

CREATE TABLE chat_settings (
    platform          TEXT NOT NULL,
    chat_id           TEXT NOT NULL,
    enabled           INTEGER NOT NULL DEFAULT 0,
    crisis_message    TEXT,
    PRIMARY KEY (platform, chat_id)
);

-- Platform update / message ids already handled, so a redelivery is not processed twice.
CREATE TABLE processed_events (
    platform     TEXT    NOT NULL,
    event_id     TEXT    NOT NULL,
    processed_at INTEGER NOT NULL,
    PRIMARY KEY (platform, event_id)
);
