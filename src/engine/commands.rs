//! The commands a person types: `/start`, `/end`, `/reset`, `/forget`, `/privacy`,
//! `/mydata`, `/rate`.

use super::*;

/// Deletes everything stored about a person: their record (and with it every
/// conversation, rating and survey answer) and their events still waiting in the inbox.
/// What `/forget` and `kindred db forget` do.
pub async fn forget_person(
    store: &Store,
    user_id: i64,
    platform: &str,
    platform_id: &str,
) -> Result<()> {
    let waiting: Vec<i64> = store
        .inbox_unhandled()
        .await?
        .into_iter()
        .filter(|(_, payload)| {
            serde_json::from_str::<Inbound>(payload).is_ok_and(|ev| {
                ev.origin()
                    .is_some_and(|(_, u)| u.platform == platform && u.id == platform_id)
            })
        })
        .map(|(id, _)| id)
        .collect();
    store.delete_user(user_id, &waiting).await
}

impl Engine {
    pub(super) async fn command(
        &self,
        chat: &ChatRef,
        user: &UserRef,
        name: &str,
        args: &str,
        out: &Out,
    ) -> Result<()> {
        match name {
            "start" => self.start(chat, user, out).await,
            "end" | "stop" => self.end(chat, user, out).await,
            "reset" => self.reset(chat, user, out).await,
            "forget" => self.forget(chat, user, args, out).await,
            "privacy" => self.privacy(chat, user, args, out).await,
            "mydata" => self.my_data(chat, user, out).await,
            "help" => {
                send_text(
                    out,
                    chat,
                    &format!("{}\n\n{}", texts::HELP, self.crisis_message(chat).await?),
                )
                .await;
                Ok(())
            }
            "rate" => self.rate_command(chat, user, args, out).await,
            other => {
                send_text(out, chat, &texts::unknown_command(other)).await;
                Ok(())
            }
        }
    }

    pub(super) async fn start(&self, chat: &ChatRef, user: &UserRef, out: &Out) -> Result<()> {
        let u = self
            .store
            .get_or_create_user(&user.platform, &user.id)
            .await?;
        if let Some(s) = self.current_session(&u, chat, out).await? {
            if s.stage == Stage::Chatting || s.stage.is_checkin() {
                self.store.touch(s.id).await?;
                send_text(out, chat, texts::WELCOME_BACK).await;
                return Ok(());
            }
            self.store.set_stage(s.id, Stage::Closed).await?;
        }
        send_text(out, chat, texts::INTRO).await;
        if self.settings.conversation.checkin {
            let s = self.new_session(&u, chat, Stage::CheckinEmotion).await?;
            prompt(
                out,
                chat,
                texts::CHECKIN_EMOTION,
                survey_choices(&s, 'e', &texts::EMOTIONS),
            )
            .await;
        } else {
            self.new_session(&u, chat, Stage::Chatting).await?;
            send_text(out, chat, texts::CHECKIN_SKIPPED).await;
        }
        Ok(())
    }

    pub(super) async fn end(&self, chat: &ChatRef, user: &UserRef, out: &Out) -> Result<()> {
        let u = self
            .store
            .get_or_create_user(&user.platform, &user.id)
            .await?;
        match self.current_session(&u, chat, out).await? {
            Some(s) if !s.stage.is_survey() => {
                if self.settings.conversation.survey {
                    self.store
                        .end_session(s.id, EndReason::User, Stage::SurveyIntensity)
                        .await?;
                    prompt(
                        out,
                        chat,
                        texts::SURVEY_INTENSITY,
                        survey_choices(&s, 'a', &SCALE),
                    )
                    .await;
                } else {
                    self.store
                        .end_session(s.id, EndReason::User, Stage::Closed)
                        .await?;
                    send_text(out, chat, texts::GOODBYE).await;
                }
            }
            _ => send_text(out, chat, texts::NOTHING_TO_END).await,
        }
        Ok(())
    }

    pub(super) async fn reset(&self, chat: &ChatRef, user: &UserRef, out: &Out) -> Result<()> {
        let u = self
            .store
            .get_or_create_user(&user.platform, &user.id)
            .await?;
        if let Some(s) = self
            .store
            .open_session(u.id, &chat.platform, &chat.id)
            .await?
        {
            self.store
                .end_session(s.id, EndReason::Reset, Stage::Closed)
                .await?;
        }
        self.new_session(&u, chat, Stage::Chatting).await?;
        send_text(out, chat, texts::RESET_DONE).await;
        Ok(())
    }

    pub(super) async fn forget_person(
        &self,
        user_id: i64,
        platform: &str,
        platform_id: &str,
    ) -> Result<()> {
        forget_person(&self.store, user_id, platform, platform_id).await
    }

    /// `/mydata`: the person's own record, ESConv-shaped JSON (their conversations,
    /// strategies, ratings and survey answers), as a file. Only in a direct chat: in a
    /// shared one others could see it.
    pub(super) async fn my_data(&self, chat: &ChatRef, user: &UserRef, out: &Out) -> Result<()> {
        if chat.kind == ChatKind::Group {
            send_text(out, chat, texts::MYDATA_ONLY_DIRECT).await;
            return Ok(());
        }
        let Some(u) = self.store.find_user(&user.platform, &user.id).await? else {
            send_text(out, chat, texts::NOTHING_STORED).await;
            return Ok(());
        };
        let mut conversations = Vec::new();
        for s in self.store.sessions_of_user(u.id).await? {
            conversations.push(crate::export::session_to_esconv(&self.store, &s).await?);
        }
        let record = serde_json::json!({
            "about": "Everything Kindred has stored about you. Conversations follow ESConv's schema; 'kindred' blocks add the strategy probabilities, ratings and times.",
            "you": {
                "platform": u.platform,
                "pseudonym": u.pseudonym,
                "first_seen": crate::export::iso(u.created_at),
                "words_kept": u.keep_words,
            },
            "conversations": conversations,
        });
        out.send(Outbound::File {
            id: None,
            chat: chat.clone(),
            file_name: "kindred-my-data.json".into(),
            content: serde_json::to_string_pretty(&record)?,
            caption: texts::MYDATA.into(),
            interaction: None,
        })
        .await
        .ok();
        tracing::info!("a person's data was sent to them");
        Ok(())
    }

    /// `/privacy`: shows whether the person's words are kept; `on` / `off` changes it.
    pub(super) async fn privacy(
        &self,
        chat: &ChatRef,
        user: &UserRef,
        args: &str,
        out: &Out,
    ) -> Result<()> {
        let choice = match args.trim().to_lowercase().as_str() {
            "" => None,
            "on" | "keep" | "yes" | "true" => Some(true),
            "off" | "no" | "false" => Some(false),
            _ => {
                send_text(out, chat, texts::PRIVACY_USAGE).await;
                return Ok(());
            }
        };
        let u = self
            .store
            .get_or_create_user(&user.platform, &user.id)
            .await?;
        let text = match choice {
            None if u.keep_words => texts::PRIVACY_KEPT,
            None => texts::PRIVACY_NOT_KEPT,
            Some(keep) => {
                self.store.set_keep_words(u.id, keep).await?;
                tracing::info!(
                    keep_words = keep,
                    "a person changed whether their words are kept"
                );
                if keep {
                    texts::PRIVACY_NOW_KEPT
                } else {
                    texts::PRIVACY_NOW_NOT_KEPT
                }
            }
        };
        send_text(out, chat, text).await;
        Ok(())
    }

    pub(super) async fn forget(
        &self,
        chat: &ChatRef,
        user: &UserRef,
        args: &str,
        out: &Out,
    ) -> Result<()> {
        let Some(u) = self.store.find_user(&user.platform, &user.id).await? else {
            send_text(out, chat, texts::NOTHING_STORED).await;
            return Ok(());
        };
        if args.trim() == "confirm" && u.forget_nonce.is_some() {
            self.forget_person(u.id, &user.platform, &user.id).await?;
            tracing::info!("a user's data was deleted on request");
            send_text(out, chat, texts::FORGET_DONE).await;
            return Ok(());
        }
        let nonce = crate::store::random_token(12);
        self.store.set_forget_nonce(u.id, Some(&nonce)).await?;
        let choices = vec![
            Choice {
                label: texts::FORGET_YES.into(),
                payload: format!("f:{}:{nonce}:yes", u.id),
            },
            Choice {
                label: texts::FORGET_NO.into(),
                payload: format!("f:{}:{nonce}:no", u.id),
            },
        ];
        prompt(out, chat, texts::FORGET_QUESTION, choices).await;
        Ok(())
    }

    pub(super) async fn rate_command(
        &self,
        chat: &ChatRef,
        user: &UserRef,
        args: &str,
        out: &Out,
    ) -> Result<()> {
        let Ok(stars) = args.trim().parse::<Stars>() else {
            send_text(out, chat, texts::RATE_USAGE).await;
            return Ok(());
        };
        let (_, session) = self.user_and_open_session(user, chat).await?;
        let prompt = match &session {
            Some(s) => self.store.latest_rating_prompt(s.id).await?,
            None => None,
        };
        let Some(p) = prompt else {
            send_text(out, chat, texts::NOTHING_TO_RATE).await;
            return Ok(());
        };
        self.apply_rating(chat, &p, stars, out).await?;
        send_text(out, chat, &texts::rated(stars)).await;
        Ok(())
    }
}
