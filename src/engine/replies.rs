//! A seeker's message and the model's reply: the message is stored and screened, the
//! reply is generated in the person's own context, checked by the reply guard and stored
//! before it is sent.

use super::*;

/// Turns model output into text for people: sentence capitals, a capital "I", no space
/// before punctuation (BlenderBot-small's tokenizer lower-cases and splits punctuation).
pub fn display_text(s: &str) -> String {
    // A reply cut at its length limit can end inside a word (BPE `@@` continuation).
    let mut t = s.trim().trim_end_matches("@@").trim_end().to_string();
    for (from, to) in [
        (" .", "."),
        (" ,", ","),
        (" ?", "?"),
        (" !", "!"),
        (" ' ", "'"),
        (" n't", "n't"),
        (" 's", "'s"),
        (" 'm", "'m"),
        (" 're", "'re"),
        (" 've", "'ve"),
        (" 'll", "'ll"),
        (" 'd", "'d"),
    ] {
        t = t.replace(from, to);
    }
    let mut out = String::with_capacity(t.len());
    let mut capitalise = true;
    let chars: Vec<char> = t.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        let word_i = c == 'i'
            && (i == 0 || !chars[i - 1].is_alphanumeric())
            && chars.get(i + 1).is_none_or(|n| !n.is_alphanumeric());
        if capitalise && c.is_alphabetic() || word_i {
            out.extend(c.to_uppercase());
            capitalise = false;
        } else {
            out.push(c);
            if c.is_alphanumeric() {
                capitalise = false;
            }
        }
        if matches!(c, '.' | '!' | '?') {
            capitalise = true;
        }
    }
    out
}

/// A generated reply on its way out.
#[derive(Debug, PartialEq)]
pub(super) enum Outgoing {
    /// The model's reply, after the crisis resources where they are due.
    Reply(String),
    /// The model's reply told the person to harm themselves: it never goes out. They get
    /// the crisis resources and an invitation to go on instead.
    Withheld(String),
}

/// What the model's reply `body` becomes. A reply that encourages self-harm (a sampled
/// small model can say anything) is replaced; a reply that itself speaks of risk gets the
/// `crisis` resources first, unless the person's message brought them already
/// (`responded`).
pub(super) fn outgoing_reply(
    screen: &safety::Screen,
    body: String,
    responded: bool,
    crisis: &str,
) -> Outgoing {
    if safety::encourages_harm(&body) {
        return Outgoing::Withheld(format!("{crisis}\n\n{}", texts::REPLY_WITHHELD));
    }
    if !responded && screen.screen(&body).is_some() {
        Outgoing::Reply(format!("{crisis}\n\n{body}"))
    } else {
        Outgoing::Reply(body)
    }
}

/// The person's message before their newest one, among a session's stored turns (their
/// newest is stored before it is answered): crisis screening reads the two together.
pub(super) fn previous_message(turns: &[Turn]) -> Option<&str> {
    turns
        .iter()
        .rev()
        .filter(|t| t.speaker == Speaker::Seeker && t.source == TurnSource::User)
        .nth(1)
        .map(|t| t.text.as_str())
}

impl Engine {
    pub(super) async fn message(
        &self,
        chat: &ChatRef,
        user: &UserRef,
        message_id: Option<&str>,
        text: &str,
        out: &Out,
    ) -> Result<()> {
        if text.trim().is_empty() {
            send_text(out, chat, texts::EMPTY_MESSAGE).await;
            return Ok(());
        }
        let u = self
            .store
            .get_or_create_user(&user.platform, &user.id)
            .await?;
        let mut session = match self.current_session(&u, chat, out).await? {
            Some(s) if s.stage.is_survey() => {
                // Writing during the survey means the person wants to talk: close it.
                self.store.set_stage(s.id, Stage::Closed).await?;
                None
            }
            other => other,
        };
        let opened = session.is_none();
        if opened {
            session = Some(self.new_session(&u, chat, Stage::Chatting).await?);
        }
        let session = session.unwrap();
        if session.stage.is_checkin() {
            // Talking instead of answering ends the check-in.
            self.store.set_stage(session.id, Stage::Chatting).await?;
        }
        let key = message_id.map(|id| event_key(chat, id));
        let stored = self
            .store
            .add_turn_once(
                session.id,
                key.as_deref().map(|k| (chat.platform.as_str(), k)),
                NewTurn {
                    speaker: Speaker::Seeker,
                    text,
                    source: TurnSource::User,
                    platform_message_id: message_id,
                    delivery: Delivery::Received,
                    ..Default::default()
                },
            )
            .await?;
        if stored.is_none() {
            // The same message, delivered twice at once: handled by the first.
            return Ok(());
        }
        tracing::info!(
            session = session.id,
            chars = text.chars().count(),
            "message received"
        );
        let limit = self.settings.conversation.max_message_chars;
        if text.chars().count() > limit {
            send_text(out, chat, &texts::long_message(limit)).await;
        }
        // The screen comes first: its response goes out now, whatever the model does,
        // and before the introduction of a new conversation.
        let risk = self.screen_seeker_turn(&session, chat, out).await?;
        if opened {
            send_text(out, chat, texts::INTRO_SHORT).await;
            if chat.kind == kindred_adapter::ChatKind::Group {
                send_text(out, chat, texts::GROUP_PRIVACY).await;
            }
        }
        let limit = self.settings.conversation.max_messages_per_minute as i64;
        let recent = self
            .store
            .messages_since(u.id, now_ms() - 60_000, limit + 2)
            .await?;
        if recent > limit {
            // Kept in the conversation, but no model reply until they slow down. A risk
            // message has had its response already. Told once, as the limit is crossed:
            // a flood answered message for message would be a flood of notices (which
            // the chat's pace then spreads over the next hour).
            if recent == limit + 1 {
                send_text(out, chat, texts::SLOW_DOWN).await;
            }
            return Ok(());
        }
        // A shared chat's own limit: many people each within theirs can still be more
        // than the model can answer for everyone else.
        if !self.within_group_limit(chat, out).await {
            return Ok(());
        }
        self.reply(&session, chat, risk, out).await
    }

    /// A message its sender edited. Kindred answered the original and does not answer
    /// the edit (the conversation would repeat itself), and the stored conversation keeps
    /// what was first sent; but an edit can add what the original did not say, so risk
    /// language in it brings the crisis resources.
    pub(super) async fn edited(
        &self,
        chat: &ChatRef,
        user: &UserRef,
        text: &str,
        out: &Out,
    ) -> Result<()> {
        self.screen_aside(chat, user, text, out).await?;
        Ok(())
    }

    /// Generates, records and sends the reply to the last seeker turn of `session`. `risk`
    /// is what the screen found in that turn: its response has gone out already; on
    /// imminent danger the reply neither suggests nor informs.
    pub(super) async fn reply(
        &self,
        session: &Session,
        chat: &ChatRef,
        risk: Option<safety::Category>,
        out: &Out,
    ) -> Result<()> {
        let _ = out.send(Outbound::Typing { chat: chat.clone() }).await;
        let limit = self.settings.conversation.max_message_chars;
        let stored = self.store.turns(session.id).await?;
        let turns: Vec<ContextTurn> = stored
            .into_iter()
            .filter(|t| t.source.is_conversation())
            .map(|t| {
                let text: String = t.text.chars().take(limit).collect();
                if t.speaker == Speaker::Seeker {
                    ContextTurn::seeker(text)
                } else {
                    ContextTurn::supporter(
                        text,
                        t.strategy.as_deref().and_then(Strategy::from_any_name),
                    )
                }
            })
            .collect();
        let crisis = self.crisis_message(chat).await?;
        let choice = match risk {
            Some(safety::Category::Imminent) => StrategyChoice::PredictExcept(&[
                Strategy::ProvidingSuggestions,
                Strategy::Information,
            ]),
            _ => StrategyChoice::Predict,
        };
        let generated = self
            .model
            .reply(session.situation.clone(), turns, choice)
            .await;
        let (text, source, strategy, probs) = match generated {
            Ok(r) if !r.text.trim().is_empty() => {
                match outgoing_reply(&self.screen, display_text(&r.text), risk.is_some(), &crisis) {
                    Outgoing::Reply(text) => (
                        text,
                        TurnSource::Model,
                        r.strategy,
                        Some(serde_json::to_string(&r.strategy_probs)?),
                    ),
                    Outgoing::Withheld(text) => {
                        // The reply's text stays out of the logs like every message's.
                        tracing::warn!(
                            session = session.id,
                            "a generated reply encouraged self-harm and was withheld"
                        );
                        (text, TurnSource::System, None, None)
                    }
                }
            }
            Ok(_) | Err(_) => {
                let timed_out = match &generated {
                    Err(e) if e.downcast_ref::<worker::TimedOut>().is_some() => {
                        tracing::warn!(session = session.id, error = %e, "generation timed out");
                        true
                    }
                    Err(e) => {
                        tracing::error!(session = session.id, error = %format!("{e:#}"), "generation failed");
                        false
                    }
                    Ok(_) => false,
                };
                let text = if timed_out {
                    texts::MODEL_TIMED_OUT
                } else {
                    texts::MODEL_FAILED
                };
                (text.to_string(), TurnSource::System, None, None)
            }
        };
        // Recorded before it is sent; marked delivered when the adapter confirms.
        let turn = self
            .store
            .add_turn(
                session.id,
                NewTurn {
                    speaker: Speaker::Supporter,
                    text: &text,
                    source,
                    strategy: strategy.map(|s| s.name()),
                    strategy_probs: probs,
                    delivery: Delivery::Pending,
                    ..Default::default()
                },
            )
            .await?;
        let _ = out
            .send(Outbound::Text {
                id: Some(format!("turn:{}", turn.id)),
                chat: chat.clone(),
                text,
                interaction: None,
            })
            .await;
        if source == TurnSource::Model {
            let n = self.store.count_bot_reply(session.id).await?;
            let every = self.settings.conversation.rating_every as i64;
            if n % every == 0 {
                self.ask_rating(session, chat, out).await?;
            }
        }
        Ok(())
    }

    /// The crisis resources for a chat: its own (set by its moderators) or the configured ones.
    pub(super) async fn crisis_message(&self, chat: &ChatRef) -> Result<String> {
        Ok(
            match self
                .store
                .chat_crisis_message(&chat.platform, &chat.id)
                .await?
            {
                Some(m) => m,
                None => self.settings.safety.crisis_message.clone(),
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reply_gets_the_crisis_resources_where_due_and_never_encourages_harm() {
        let crisis = "CALL 988";
        assert_eq!(
            outgoing_reply(
                safety::Screen::standard(),
                "How are you feeling?".into(),
                false,
                crisis
            ),
            Outgoing::Reply("How are you feeling?".into())
        );
        // The person's message brought the resources already: the reply goes as it is.
        assert_eq!(
            outgoing_reply(
                safety::Screen::standard(),
                "How are you feeling?".into(),
                true,
                crisis
            ),
            Outgoing::Reply("How are you feeling?".into())
        );
        // A reply that itself speaks of risk brings them.
        let risky = "It sounds like you want to end it all.";
        assert_eq!(
            outgoing_reply(safety::Screen::standard(), risky.into(), false, crisis),
            Outgoing::Reply(format!("CALL 988\n\n{risky}"))
        );
        // Asking about self-harm directly is good practice, and goes out.
        let asking = "Have you had thoughts of hurting yourself?";
        assert_eq!(
            outgoing_reply(safety::Screen::standard(), asking.into(), true, crisis),
            Outgoing::Reply(asking.to_string())
        );
        for harmful in [
            "Maybe you should just kill yourself.",
            "I think you should end your life.",
            "You deserve to die.",
        ] {
            let Outgoing::Withheld(text) =
                outgoing_reply(safety::Screen::standard(), harmful.into(), false, crisis)
            else {
                panic!("went out: {harmful}");
            };
            assert!(text.starts_with("CALL 988") && !text.contains(harmful));
        }
    }

    #[test]
    fn display_text_reads_like_a_person_wrote_it() {
        assert_eq!(
            display_text("i ' m sorry to hear that . have you tried talking to them ?"),
            "I'm sorry to hear that. Have you tried talking to them?"
        );
        assert_eq!(
            display_text("that is hard, i think."),
            "That is hard, I think."
        );
    }
}
