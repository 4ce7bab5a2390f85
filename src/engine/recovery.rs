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
        if let Some(id) = outbound_id
            .strip_prefix("turn:")
            .and_then(|s| s.parse().ok())
        {
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
        let mut n = 0;
        for t in self.store.undelivered_turns().await? {
            let Some(s) = self.store.session(t.session_id).await? else {
                continue;
            };
            let Some(out) = out_for(&s.chat_platform).map(|tx| Out::to_chat(&tx)) else {
                continue;
            };
            let chat = chat_of(&s);
            let _ = out
                .send(Outbound::Text {
                    id: Some(format!("turn:{}", t.id)),
                    chat,
                    text: t.text.clone(),
                    interaction: None,
                })
                .await;
            n += 1;
        }
        for s in self.store.chatting_sessions().await? {
            let turns = self.store.turns(s.id).await?;
            // A crisis response recorded after the person's turn does not answer it: the
            // model's reply is still owed.
            let Some(last) = turns.iter().rev().find(|t| t.source != TurnSource::Safety) else {
                continue;
            };
            if last.speaker == Speaker::Seeker {
                let Some(out) = out_for(&s.chat_platform).map(|tx| Out::to_chat(&tx)) else {
                    continue;
                };
                let chat = chat_of(&s);
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
