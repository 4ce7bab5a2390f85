//! After a crash or restart: events stored but not handled are handled, replies stored
//! but not delivered are sent; delivery reports; idle sessions are ended.

use super::*;

impl Engine {
    pub(super) async fn delivered(
        &self,
        outbound_id: &str,
        platform_message_id: Option<&str>,
        out: &Out,
    ) -> Result<()> {
        if let Some(id) = recorded_turn(outbound_id) {
            self.store.mark_delivered(id, platform_message_id).await?;
        } else if let Some(id) = outbound_id
            .strip_prefix("rating:")
            .and_then(|s| s.parse().ok())
        {
            if let Some(pmid) = platform_message_id {
                self.store.set_prompt_message_id(id, pmid).await?;
                // A press can overtake the report that its prompt was delivered (the
                // person pressed before the platform's answer to the send came back):
                // the rating was recorded then, but the message had no id to edit yet.
                if let Some(p) = self.store.rating_prompt(id).await? {
                    if let (Some(stars), Some(s)) =
                        (p.stars, self.store.session(p.session_id).await?)
                    {
                        edit_rated_prompt(out, &chat_of(&s), p.id, pmid, stars, &s.nonce).await;
                    }
                }
            }
        }
        Ok(())
    }

    /// After a restart: re-sends replies that were recorded but never confirmed delivered,
    /// and answers seeker messages that were stored but not yet replied to.
    pub async fn recover(
        &self,
        out_for: impl Fn(&str) -> Option<mpsc::Sender<Outbound>>,
    ) -> Result<usize> {
        let pending = self.store.undelivered_turns().await?;
        let resent = self.resend(pending, &out_for).await?;
        let prompts = self.store.unsent_rating_prompts().await?;
        let prompts = self.resend_rating_prompts(prompts, &out_for).await?;
        Ok(resent + prompts + self.answer_owed(&out_for).await?)
    }

    /// Sends again the rating prompts a crash caught between recording and sending
    /// (after the replies they rate, which [`Engine::resend`] sent first). One that was
    /// sent but whose report was lost in the crash is asked twice; either copy's
    /// buttons rate the same replies.
    async fn resend_rating_prompts(
        &self,
        prompts: Vec<crate::store::RatingPrompt>,
        out_for: &impl Fn(&str) -> Option<mpsc::Sender<Outbound>>,
    ) -> Result<usize> {
        let mut n = 0;
        for p in prompts {
            let Some(s) = self.store.session(p.session_id).await? else {
                continue;
            };
            let Some((out, chat)) = route_to(&s, out_for) else {
                continue;
            };
            send_rating_prompt(&out, &chat, p.id, &s.nonce).await;
            n += 1;
        }
        Ok(n)
    }

    /// The same on a database several instances share (`instance` is this one): only
    /// the pending replies and unsent rating questions of instances that have stopped
    /// are sent again (claimed, so no two instances send one). Owed replies are not given here: the message a stopped
    /// instance did not answer is still unhandled in the inbox, and whichever instance
    /// takes the person's lease handles it again (see [`Engine::answer_if_owed`]), in
    /// order with the person's later messages.
    pub async fn recover_shared(
        &self,
        out_for: impl Fn(&str) -> Option<mpsc::Sender<Outbound>>,
        instance: &str,
    ) -> Result<usize> {
        let pending = self.store.claim_pending_turns(instance).await?;
        let resent = self.resend(pending, &out_for).await?;
        let prompts = self.store.claim_unsent_rating_prompts(instance).await?;
        Ok(resent + self.resend_rating_prompts(prompts, &out_for).await?)
    }

    /// Answers the person's message in `chat` if it is the last of their open
    /// conversation and has no reply yet.
    pub(super) async fn answer_if_owed(
        &self,
        chat: &ChatRef,
        user: &UserRef,
        out: &Out,
    ) -> Result<()> {
        let Some(u) = self.store.find_user(&chat.platform, &user.id).await? else {
            return Ok(());
        };
        let Some(s) = self
            .store
            .open_session(u.id, &chat.platform, &chat.id)
            .await?
        else {
            return Ok(());
        };
        if s.stage != Stage::Chatting {
            return Ok(());
        }
        let turns = self.store.turns(s.id).await?;
        let owed = turns
            .iter()
            .rev()
            .find(|t| t.source != TurnSource::Safety)
            .is_some_and(|t| t.speaker == Speaker::Seeker);
        if owed {
            let risk = self.screen_seeker_turn(&s, chat, out).await?;
            self.reply(&s, chat, risk, out).await?;
        }
        Ok(())
    }

    /// Sends again the refused messages whose next attempt is due (run periodically).
    pub async fn retry_failed_sends(
        &self,
        out_for: impl Fn(&str) -> Option<mpsc::Sender<Outbound>>,
    ) -> Result<usize> {
        let due = self.store.claim_due_retries(self.store.instance()).await?;
        if !due.is_empty() {
            tracing::info!(messages = due.len(), "trying refused messages again");
        }
        self.resend(due, &out_for).await
    }

    /// Sends recorded replies again; returns how many.
    async fn resend(
        &self,
        pending: Vec<crate::store::Turn>,
        out_for: &impl Fn(&str) -> Option<mpsc::Sender<Outbound>>,
    ) -> Result<usize> {
        let mut n = 0;
        for t in pending {
            let Some(s) = self.store.session(t.session_id).await? else {
                continue;
            };
            let Some((out, chat)) = route_to(&s, out_for) else {
                continue;
            };
            let _ = out
                .send(Outbound::Text {
                    id: Some(turn_outbound_id(&t)),
                    chat,
                    text: t.text.clone(),
                    interaction: None,
                })
                .await;
            n += 1;
        }
        Ok(n)
    }

    /// Answers the people whose last message in a conversation has no reply (after a
    /// restart of the only instance).
    async fn answer_owed(
        &self,
        out_for: &impl Fn(&str) -> Option<mpsc::Sender<Outbound>>,
    ) -> Result<usize> {
        let mut n = 0;
        for s in self.store.chatting_sessions().await? {
            let turns = self.store.turns(s.id).await?;
            // A crisis response recorded after the person's turn does not answer it: the
            // model's reply is still owed.
            let Some(last) = turns.iter().rev().find(|t| t.source != TurnSource::Safety) else {
                continue;
            };
            if last.speaker == Speaker::Seeker {
                let Some((out, chat)) = route_to(&s, out_for) else {
                    continue;
                };
                let risk = self.screen_seeker_turn(&s, &chat, &out).await?;
                self.reply(&s, &chat, risk, &out).await?;
                n += 1;
            }
        }
        Ok(n)
    }

    /// Ends sessions idle past the timeout and applies the retention period (run
    /// periodically by the runtime).
    pub async fn end_idle_sessions(&self) -> Result<usize> {
        let cutoff = now_ms() - self.settings.conversation.idle_timeout_minutes as i64 * 60_000;
        let idle = self.store.idle_sessions(cutoff).await?;
        for s in &idle {
            self.store
                .end_session(s.id, EndReason::Idle, Stage::Closed)
                .await?;
        }
        let days = self.settings.conversation.retention_days;
        if days > 0 {
            let removed = self
                .store
                .delete_sessions_ended_before(now_ms() - days as i64 * 86_400_000)
                .await?;
            if removed > 0 {
                tracing::info!(removed, "conversations past the retention period deleted");
            }
        }
        Ok(idle.len())
    }
}

/// Where to send to a conversation's chat outside an event (recovery, retries): its
/// platform's adapter and the chat; `None` when no adapter of that platform runs now.
fn route_to(
    s: &Session,
    out_for: &impl Fn(&str) -> Option<mpsc::Sender<Outbound>>,
) -> Option<(Out, ChatRef)> {
    let out = out_for(&s.chat_platform).map(|tx| Out::to_chat(&tx))?;
    Some((out, chat_of(s)))
}
