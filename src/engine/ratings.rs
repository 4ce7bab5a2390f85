//! Ratings: after every `rating_every` replies the person is asked how helpful the last
//! ones were; a press (or a bare number) is stored against exactly those replies.

use super::*;

pub(super) fn rating_choices(prompt_id: i64, nonce: &str) -> Vec<Choice> {
    (1..=5)
        .map(|s| Choice {
            label: format!("{s} ★"),
            payload: format!("r:{prompt_id}:{nonce}:{s}"),
        })
        .collect()
}

/// Shows on a rating prompt the stars given (the buttons stay, so the rating can change).
pub(super) async fn edit_rated_prompt(
    out: &Out,
    chat: &ChatRef,
    prompt_id: i64,
    platform_message_id: &str,
    stars: Stars,
    nonce: &str,
) {
    let _ = out
        .send(Outbound::EditPrompt {
            chat: chat.clone(),
            platform_message_id: platform_message_id.to_string(),
            text: format!("{} {}", texts::RATING_QUESTION, texts::rated(stars)),
            choices: rating_choices(prompt_id, nonce),
            chosen: Some(stars.get() as usize - 1),
        })
        .await;
}

/// Sends rating prompt `prompt_id` (its delivery report records its message id).
pub(super) async fn send_rating_prompt(out: &Out, chat: &ChatRef, prompt_id: i64, nonce: &str) {
    let _ = out
        .send(Outbound::Prompt {
            id: Some(format!("rating:{prompt_id}")),
            chat: chat.clone(),
            text: texts::RATING_QUESTION.into(),
            choices: rating_choices(prompt_id, nonce),
            interaction: None,
        })
        .await;
}

impl Engine {
    pub(super) async fn ask_rating(
        &self,
        session: &Session,
        chat: &ChatRef,
        out: &Out,
    ) -> Result<()> {
        let model_turns: Vec<_> = self
            .store
            .turns(session.id)
            .await?
            .into_iter()
            .filter(|t| t.source == TurnSource::Model)
            .collect();
        if model_turns.len() < 2 {
            return Ok(());
        }
        let (a, b) = (
            &model_turns[model_turns.len() - 2],
            &model_turns[model_turns.len() - 1],
        );
        let prompt = self
            .store
            .create_rating_prompt(session.id, a.id, b.id)
            .await?;
        send_rating_prompt(out, chat, prompt.id, &session.nonce).await;
        Ok(())
    }

    pub(super) async fn apply_rating(
        &self,
        chat: &ChatRef,
        p: &crate::store::RatingPrompt,
        stars: Stars,
        out: &Out,
    ) -> Result<()> {
        self.store.set_rating(p.id, stars).await?;
        crate::metrics::metrics().rated(stars);
        let nonce = self.store.session(p.session_id).await?.map(|s| s.nonce);
        // The message's id read again after the rating is stored: a delivery report
        // handled meanwhile may have brought it (and found no rating yet). Without an id
        // (the delivery not reported yet) the edit is made when the report comes: see
        // `delivered`.
        let pmid = match self.store.rating_prompt(p.id).await? {
            Some(now) => now.platform_message_id,
            None => p.platform_message_id.clone(),
        };
        if let (Some(pmid), Some(nonce)) = (pmid, nonce) {
            edit_rated_prompt(out, chat, p.id, &pmid, stars, &nonce).await;
        }
        Ok(())
    }
}
