//! Crisis care inside the conversation: every seeker turn is screened, the response for
//! its category goes out before the model is asked anything, and a community's moderators
//! are alerted when it chose to be (`/kindred alerts`).

use super::*;

/// Turns read to screen a message: enough to hold the person's message before it and
/// everything between (a crisis response, a reply, a notice or two).
const SCREEN_WINDOW: i64 = 32;

impl Engine {
    /// A moderator's action (already checked by the adapter against platform permissions).
    pub(super) async fn moderate(
        &self,
        chat: &ChatRef,
        user: &UserRef,
        action: kindred_adapter::ModAction,
        interaction: Option<String>,
        out: &Out,
    ) -> Result<()> {
        use kindred_adapter::ModAction;
        let default_on = self.settings.group_default_enabled(&chat.platform);
        let reply = match action {
            ModAction::Enable => {
                self.store
                    .set_chat_enabled(&chat.platform, &chat.id, true)
                    .await?;
                tracing::info!(platform = %chat.platform, chat = %chat.id, "enabled in a shared chat");
                texts::ENABLED.to_string()
            }
            ModAction::Disable => {
                self.store
                    .set_chat_enabled(&chat.platform, &chat.id, false)
                    .await?;
                tracing::info!(platform = %chat.platform, chat = %chat.id, "disabled in a shared chat");
                texts::DISABLED.to_string()
            }
            ModAction::Status => {
                let on = self.answers_in(chat).await?;
                let custom = self
                    .store
                    .chat_crisis_message(&chat.platform, &chat.id)
                    .await?;
                texts::status(on, custom.is_some(), &self.crisis_message(chat).await?)
            }
            ModAction::SetResources(text) => {
                let text = text.trim();
                let value = (!text.is_empty()).then_some(text);
                self.store
                    .set_chat_crisis_message(&chat.platform, &chat.id, value, default_on)
                    .await?;
                match value {
                    Some(v) => format!("{}\n\n{v}", texts::RESOURCES_SET),
                    None => texts::RESOURCES_RESET.to_string(),
                }
            }
            ModAction::SetAlerts {
                target,
                include_text,
            } => {
                // For the whole community (a Discord server), whichever of its channels
                // the moderator asked from.
                self.store
                    .set_chat_alerts(
                        &chat.platform,
                        &chat.community_key(),
                        target.as_deref(),
                        include_text,
                        default_on,
                    )
                    .await?;
                tracing::info!(platform = %chat.platform, chat = %chat.id, on = target.is_some(), "risk alerts set");
                match target {
                    Some(_) => texts::alerts_on(include_text),
                    None => texts::ALERTS_OFF.to_string(),
                }
            }
            ModAction::LinkAlerts => {
                let code = crate::store::random_token(8);
                self.store
                    .set_alert_link_code(&chat.platform, &chat.community_key(), &code, default_on)
                    .await?;
                texts::alert_link_code(&code)
            }
            ModAction::UseAlertCode(code) => {
                match self
                    .store
                    .use_alert_link_code(&chat.platform, code.trim(), &chat.id, 3_600_000)
                    .await?
                {
                    Some(source) => {
                        tracing::info!(platform = %chat.platform, chat = %source, "risk alerts linked");
                        texts::ALERTS_LINKED.to_string()
                    }
                    None => texts::ALERT_CODE_UNKNOWN.to_string(),
                }
            }
        };
        self.notice(out, chat, user, interaction, &reply).await;
        Ok(())
    }

    /// Screens the newest seeker turn of `session` (with the one before it) and, when it
    /// shows a risk, records and sends the response for its category unless a response
    /// to that turn is already recorded (a restart after it was). Returns the category.
    pub(super) async fn screen_seeker_turn(
        &self,
        session: &Session,
        chat: &ChatRef,
        out: &Out,
    ) -> Result<Option<safety::Category>> {
        // The newest turns only: the person's message, the one before it, and what
        // followed (the screen's cost must not grow with a flood of messages).
        let stored = self.store.recent_turns(session.id, SCREEN_WINDOW).await?;
        let Some(last_at) = stored
            .iter()
            .rposition(|t| t.speaker == Speaker::Seeker && t.source == TurnSource::User)
        else {
            return Ok(None);
        };
        let last = &stored[last_at].text;
        let Some(finding) = self.screen.screen_after(previous_message(&stored), last) else {
            return Ok(None);
        };
        let already = stored[last_at + 1..]
            .iter()
            .any(|t| t.source == TurnSource::Safety);
        if !already {
            let words = last.clone();
            self.send_risk_response(Some(session), chat, session.user_id, &words, &finding, out)
                .await?;
        }
        Ok(Some(finding.category))
    }

    /// Sends the response to `finding`: recorded as a turn of `session` first (so that a
    /// crash re-sends it), or, outside a conversation, sent as it is.
    pub(super) async fn send_risk_response(
        &self,
        session: Option<&Session>,
        chat: &ChatRef,
        user_id: i64,
        words: &str,
        finding: &safety::Finding,
        out: &Out,
    ) -> Result<()> {
        let text = self
            .responses
            .compose(finding, &self.crisis_message(chat).await?);
        crate::metrics::metrics().crisis_detected(finding.category.name());
        // Which category, never who or what they wrote.
        tracing::info!(
            session = session.map(|s| s.id),
            category = %finding.category,
            "risk detected: crisis response sent"
        );
        tracing::debug!(cue = %finding.cue, categories = ?finding.categories, "what the screen found");
        let id = match session {
            Some(s) => {
                let turn = self
                    .store
                    .add_turn(
                        s.id,
                        NewTurn {
                            speaker: Speaker::Supporter,
                            text: &text,
                            source: TurnSource::Safety,
                            delivery: Delivery::Pending,
                            ..Default::default()
                        },
                    )
                    .await?;
                Some(turn_outbound_id(&turn))
            }
            None => None,
        };
        let _ = out
            .send(Outbound::Text {
                id,
                chat: chat.clone(),
                text,
                interaction: None,
            })
            .await;
        out.care_sent();
        self.alert_moderators(chat, user_id, words, finding, out)
            .await
    }

    /// The crisis response to `words` whose handling failed before it went out (the
    /// database refused to store them, say): the screen needs nothing stored, and a
    /// person at risk gets the resources whatever else failed. The community's own
    /// resources if they can still be read, else the configured ones. Nothing is
    /// recorded (the words were not either) and no moderator is alerted (both need the
    /// database); if the event is handled again later, the resources come again.
    pub(super) async fn care_despite_failure(&self, chat: &ChatRef, words: &str, out: &Out) {
        let Some(finding) = self.screen.screen(words) else {
            return;
        };
        let crisis = match self.crisis_message(chat).await {
            Ok(m) => m,
            Err(_) => self.settings.safety.crisis_message.clone(),
        };
        crate::metrics::metrics().crisis_detected(finding.category.name());
        tracing::warn!(
            category = %finding.category,
            "risk detected in a message whose handling failed: crisis response sent, not recorded"
        );
        let _ = out
            .send(Outbound::Text {
                id: Some(unrecorded_care_id()),
                chat: chat.clone(),
                text: self.responses.compose(&finding, &crisis),
                interaction: None,
            })
            .await;
        out.care_sent();
    }

    /// Tells a community's moderators, where they asked for it (`/kindred alerts`,
    /// `/alerts`), that someone in their shared chat may be at risk: the category, the
    /// person's pseudonym and how to reach them, and their words only if the community
    /// opted in. Never for direct messages: those stay between the person and Kindred.
    pub(super) async fn alert_moderators(
        &self,
        chat: &ChatRef,
        user_id: i64,
        words: &str,
        finding: &safety::Finding,
        out: &Out,
    ) -> Result<()> {
        if chat.kind != kindred_adapter::ChatKind::Group {
            return Ok(());
        }
        // The community's route; a channel's own (set before routes were kept per
        // community) where the community has none.
        let mut route = self
            .store
            .chat_alerts(&chat.platform, &chat.community_key())
            .await?;
        if route.is_none() && chat.community.is_some() {
            route = self.store.chat_alerts(&chat.platform, &chat.id).await?;
        }
        let Some(route) = route else {
            return Ok(());
        };
        let Some(user) = self.store.user(user_id).await? else {
            return Ok(());
        };
        let (reach, place) = match chat.platform.as_str() {
            "discord" => (
                format!("<@{}>", user.platform_user_id),
                format!("<#{}>", chat.id),
            ),
            "telegram" => (
                format!("tg://user?id={}", user.platform_user_id),
                "the linked group".to_string(),
            ),
            _ => (
                format!("user {}", user.platform_user_id),
                format!("chat {}", chat.id),
            ),
        };
        let text = texts::risk_alert(
            finding.category.name(),
            &user.pseudonym,
            &reach,
            &place,
            route.include_text.then_some(words),
        );
        tracing::info!(category = %finding.category, "risk alert sent to the moderators");
        let _ = out
            .send(Outbound::Text {
                id: None,
                chat: ChatRef::group(chat.platform.clone(), route.target, chat.community.clone()),
                text,
                interaction: None,
            })
            .await;
        Ok(())
    }

    /// Screens words that are not a conversation turn (an edit, a caption, a command's
    /// arguments) and sends the response if they show a risk, recorded in the person's
    /// open conversation where there is one.
    pub(super) async fn screen_aside(
        &self,
        chat: &ChatRef,
        user: &UserRef,
        text: &str,
        out: &Out,
    ) -> Result<Option<safety::Category>> {
        let Some(finding) = self.screen.screen(text) else {
            return Ok(None);
        };
        let (u, session) = self.user_and_open_session(user, chat).await?;
        self.send_risk_response(session.as_ref(), chat, u.id, text, &finding, out)
            .await?;
        Ok(Some(finding.category))
    }
}
