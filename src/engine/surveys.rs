//! The optional check-in before a conversation and the survey after it (ESConv's
//! pre-chat and post-chat questions).

use super::*;

pub(super) fn survey_choices(session: &Session, field: char, options: &[&str]) -> Vec<Choice> {
    let mut v: Vec<Choice> = options
        .iter()
        .map(|o| Choice {
            label: o.to_string(),
            payload: format!("s:{}:{}:{field}:{o}", session.id, session.nonce),
        })
        .collect();
    v.push(Choice {
        label: "Skip".into(),
        payload: format!("s:{}:{}:{field}:skip", session.id, session.nonce),
    });
    v
}

pub(super) const SCALE: [&str; 5] = ["1", "2", "3", "4", "5"];

/// The question after a check-in or survey answer: its stage, text, field and options.
pub(super) type NextQuestion = (Stage, &'static str, char, &'static [&'static str]);

impl Engine {
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn survey_answer(
        &self,
        chat: &ChatRef,
        user: &UserRef,
        s: &Session,
        field: char,
        value: Option<String>,
        interaction: Option<String>,
        out: &Out,
    ) -> Result<()> {
        // Which stage each question belongs to, the column it fills, and what follows.
        let (expected, column, next): (Stage, SessionField, Option<NextQuestion>) = match field {
            'e' => (
                Stage::CheckinEmotion,
                SessionField::EmotionType,
                Some((
                    Stage::CheckinProblem,
                    texts::CHECKIN_PROBLEM,
                    'p',
                    &texts::PROBLEMS,
                )),
            ),
            'p' => (
                Stage::CheckinProblem,
                SessionField::ProblemType,
                Some((
                    Stage::CheckinIntensity,
                    texts::CHECKIN_INTENSITY,
                    'i',
                    &SCALE,
                )),
            ),
            'i' => (Stage::CheckinIntensity, SessionField::IntensityBefore, None),
            'a' => (
                Stage::SurveyIntensity,
                SessionField::IntensityAfter,
                Some((Stage::SurveyEmpathy, texts::SURVEY_EMPATHY, 'm', &SCALE)),
            ),
            'm' => (
                Stage::SurveyEmpathy,
                SessionField::Empathy,
                Some((Stage::SurveyRelevance, texts::SURVEY_RELEVANCE, 'v', &SCALE)),
            ),
            'v' => (Stage::SurveyRelevance, SessionField::Relevance, None),
            _ => {
                self.notice(out, chat, user, interaction, texts::STALE_BUTTON)
                    .await;
                return Ok(());
            }
        };
        if s.stage != expected {
            self.notice(out, chat, user, interaction, texts::STALE_BUTTON)
                .await;
            return Ok(());
        }
        let checkin = field == 'e' || field == 'p' || field == 'i';
        let Some(value) = value else {
            // Skip ends the whole check-in or survey in one step.
            if checkin {
                self.store.set_stage(s.id, Stage::Chatting).await?;
                self.notice(out, chat, user, interaction, texts::CHECKIN_SKIPPED)
                    .await;
            } else {
                self.store.set_stage(s.id, Stage::Closed).await?;
                self.notice(out, chat, user, interaction, texts::GOODBYE)
                    .await;
            }
            return Ok(());
        };
        match column {
            SessionField::EmotionType | SessionField::ProblemType => {
                let allowed: &[&str] = if field == 'e' {
                    &texts::EMOTIONS
                } else {
                    &texts::PROBLEMS
                };
                if !allowed.contains(&value.as_str()) {
                    self.notice(out, chat, user, interaction, texts::STALE_BUTTON)
                        .await;
                    return Ok(());
                }
                self.store
                    .set_session_field(s.id, column, FieldValue::Text(&value))
                    .await?;
            }
            _ => {
                let Some(n) = value.parse::<i64>().ok().filter(|n| (1..=5).contains(n)) else {
                    self.notice(out, chat, user, interaction, texts::STALE_BUTTON)
                        .await;
                    return Ok(());
                };
                self.store
                    .set_session_field(s.id, column, FieldValue::Int(n))
                    .await?;
            }
        }
        self.notice(out, chat, user, interaction, &format!("Noted: {value}."))
            .await;
        match next {
            Some((next_stage, question, next_field, options)) => {
                self.store.set_stage(s.id, next_stage).await?;
                prompt(out, chat, question, survey_choices(s, next_field, options)).await;
            }
            None if checkin => {
                self.store.set_stage(s.id, Stage::Chatting).await?;
                send_text(out, chat, texts::CHECKIN_DONE).await;
            }
            None => {
                self.store.set_stage(s.id, Stage::Closed).await?;
                send_text(out, chat, texts::GOODBYE).await;
            }
        }
        Ok(())
    }
}
