//! Button presses: rating stars, survey answers and `/forget` confirmations. A payload
//! names its session and carries a nonce, so forged or stale presses are refused.

use super::*;

/// What a button press says, parsed from its payload. Payloads carry a nonce of the
/// session (or of the pending /forget) so that a forged or stale press is recognised.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Press {
    Rating {
        prompt_id: i64,
        nonce: String,
        stars: Stars,
    },
    Survey {
        session_id: i64,
        nonce: String,
        field: char,
        value: Option<String>,
    },
    Forget {
        user_id: i64,
        nonce: String,
        confirm: bool,
    },
}

pub(super) fn parse_press(payload: &str) -> Option<Press> {
    let parts: Vec<&str> = payload.split(':').collect();
    match parts.as_slice() {
        ["r", id, nonce, stars] => {
            let stars: Stars = stars.parse().ok()?;
            Some(Press::Rating {
                prompt_id: id.parse().ok()?,
                nonce: nonce.to_string(),
                stars,
            })
        }
        ["s", id, nonce, field, value] => Some(Press::Survey {
            session_id: id.parse().ok()?,
            nonce: nonce.to_string(),
            field: field.chars().next()?,
            value: (*value != "skip").then(|| value.to_string()),
        }),
        ["f", id, nonce, answer] => Some(Press::Forget {
            user_id: id.parse().ok()?,
            nonce: nonce.to_string(),
            confirm: *answer == "yes",
        }),
        _ => None,
    }
}

impl Engine {
    /// The session a press refers to, if the press is genuine: the session exists, the
    /// payload carries its nonce and the presser is its owner. Otherwise, the notice to show.
    pub(super) async fn session_for_press(
        &self,
        session_id: i64,
        nonce: &str,
        presser: Option<&User>,
    ) -> Result<std::result::Result<Session, &'static str>> {
        let Some(s) = self.store.session(session_id).await? else {
            return Ok(Err(texts::STALE_BUTTON));
        };
        if s.nonce != nonce {
            return Ok(Err(texts::STALE_BUTTON));
        }
        if presser.map(|u| u.id) != Some(s.user_id) {
            return Ok(Err(texts::NOT_YOUR_BUTTON));
        }
        Ok(Ok(s))
    }

    pub(super) async fn press(
        &self,
        chat: &ChatRef,
        user: &UserRef,
        payload: &str,
        interaction: Option<String>,
        out: &Out,
    ) -> Result<()> {
        let Some(press) = parse_press(payload) else {
            self.notice(out, chat, user, interaction, texts::STALE_BUTTON)
                .await;
            return Ok(());
        };
        let presser = self.store.find_user(&user.platform, &user.id).await?;
        match press {
            Press::Rating {
                prompt_id,
                nonce,
                stars,
            } => {
                let Some(p) = self.store.rating_prompt(prompt_id).await? else {
                    self.notice(out, chat, user, interaction, texts::STALE_BUTTON)
                        .await;
                    return Ok(());
                };
                match self
                    .session_for_press(p.session_id, &nonce, presser.as_ref())
                    .await?
                {
                    Err(text) => self.notice(out, chat, user, interaction, text).await,
                    Ok(s) if s.ended_at.is_some() => {
                        self.notice(out, chat, user, interaction, texts::ENDED_CONVERSATION)
                            .await
                    }
                    Ok(_) => {
                        self.apply_rating(chat, &p, stars, out).await?;
                        self.notice(out, chat, user, interaction, &texts::rated(stars))
                            .await;
                    }
                }
                Ok(())
            }
            Press::Survey {
                session_id,
                nonce,
                field,
                value,
            } => match self
                .session_for_press(session_id, &nonce, presser.as_ref())
                .await?
            {
                Err(text) => {
                    self.notice(out, chat, user, interaction, text).await;
                    Ok(())
                }
                Ok(s) => {
                    self.survey_answer(chat, user, &s, field, value, interaction, out)
                        .await
                }
            },
            Press::Forget {
                user_id,
                nonce,
                confirm,
            } => {
                let Some(u) = presser.filter(|u| u.id == user_id) else {
                    self.notice(out, chat, user, interaction, texts::NOT_YOUR_BUTTON)
                        .await;
                    return Ok(());
                };
                if u.forget_nonce.as_deref() != Some(nonce.as_str()) {
                    self.notice(out, chat, user, interaction, texts::STALE_BUTTON)
                        .await;
                    return Ok(());
                }
                if confirm {
                    self.forget_person(u.id, &user.platform, &user.id).await?;
                    tracing::info!("a user's data was deleted on request");
                    self.notice(out, chat, user, interaction, texts::FORGET_DONE)
                        .await;
                } else {
                    self.store.set_forget_nonce(u.id, None).await?;
                    self.notice(out, chat, user, interaction, texts::FORGET_KEPT)
                        .await;
                }
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_parse_or_are_rejected() {
        assert_eq!(
            parse_press("r:3:abc:4"),
            Some(Press::Rating {
                prompt_id: 3,
                nonce: "abc".into(),
                stars: Stars::new(4).unwrap()
            })
        );
        assert_eq!(parse_press("r:3:abc:9"), None);
        assert_eq!(parse_press("r:x:abc:4"), None);
        assert_eq!(parse_press("garbage"), None);
        assert!(matches!(
            parse_press("s:1:n:a:skip"),
            Some(Press::Survey { value: None, .. })
        ));
        assert!(matches!(
            parse_press("f:1:n:yes"),
            Some(Press::Forget { confirm: true, .. })
        ));
    }
}
