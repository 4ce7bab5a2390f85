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
        let pending = self.store.undelivered_turns().await?;
        self.recover_with(pending, out_for, None).await
    }

    /// The same on a database several instances share (`instance` is this one): only
    /// the pending replies of instances that have stopped are re-sent (claimed, so no
    /// two instances send one), and a person's owed reply is given only under their
    /// lease (a live instance holding it is giving it now).
    pub async fn recover_shared(
        &self,
        out_for: impl Fn(&str) -> Option<mpsc::Sender<Outbound>>,
        instance: &str,
    ) -> Result<usize> {
        let pending = self.store.claim_pending_turns(instance).await?;
        self.recover_with(pending, out_for, Some(instance)).await
    }

    async fn recover_with(
        &self,
        pending: Vec<crate::store::Turn>,
        out_for: impl Fn(&str) -> Option<mpsc::Sender<Outbound>>,
        instance: Option<&str>,
    ) -> Result<usize> {
        let mut n = 0;
        for t in pending {
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
                let lease = match instance {
                    Some(instance) => {
                        let Some(user) = self.store.user(s.user_id).await? else {
                            continue;
                        };
                        let key = super::runtime::person_key_of(
                            &s.chat_platform,
                            &s.chat_id,
                            &user.platform_user_id,
                        );
                        let lease = format!("person:{key}");
                        let ttl = self.reply_timeout().as_millis() as i64 + 60_000;
                        if !self.store.try_lease(&lease, instance, ttl).await? {
                            continue;
                        }
                        // Answered meanwhile by the instance that held it?
                        let turns = self.store.turns(s.id).await?;
                        let still_owed = turns
                            .iter()
                            .rev()
                            .find(|t| t.source != TurnSource::Safety)
                            .is_some_and(|t| t.speaker == Speaker::Seeker);
                        if !still_owed {
                            self.store.release_lease(&lease, instance).await?;
                            continue;
                        }
                        Some((lease, instance))
                    }
                    None => None,
                };
                let chat = chat_of(&s);
                let result = async {
                    let risk = self.screen_seeker_turn(&s, &chat, &out).await?;
                    self.reply(&s, &chat, risk, &out).await
                }
                .await;
                if let Some((lease, instance)) = lease {
                    self.store.release_lease(&lease, instance).await?;
                }
                result?;
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
