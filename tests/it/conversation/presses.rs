//! Rating presses and interactions: late, forged, stale and foreign presses, and where
//! the answers to them go.

use super::next_outbound;
use crate::helpers::*;
use kindred::domain::Stars;
use kindred_adapter::{ChatRef, Inbound, ModAction, Outbound};

/// A rating question that a crash caught between recording and sending is asked after
/// the restart, once; one already sent or already answered is not asked again.
#[tokio::test]
async fn a_rating_question_lost_in_a_crash_is_asked_after_the_restart() {
    let app = spawn_app(&[]).await;
    app.send(message("ana", "my week was hard")).await;
    let out = app.send(message("ana", "and I can't sleep")).await;
    let (id, _) = rating_prompts(&out).remove(0);
    let prompt_id: i64 = id.trim_start_matches("rating:").parse().unwrap();
    // Delivered: nothing to ask again.
    let app = restart(app, &[]).await;
    assert!(rating_prompts(&app.recover().await).is_empty());
    // Recorded, never reported sent (the crash came first): asked again.
    app.forget_delivery_of_prompt(prompt_id).await;
    let app = restart(app, &[]).await;
    let asked = rating_prompts(&app.recover().await);
    assert_eq!(asked.len(), 1, "{asked:?}");
    assert_eq!(
        asked[0].0, id,
        "the same prompt, so its report records its id"
    );
    // Answered before the restart: not asked again.
    app.send(press("ana", "ana", &asked[0].1[3])).await;
    app.forget_delivery_of_prompt(prompt_id).await;
    let app = restart(app, &[]).await;
    assert!(rating_prompts(&app.recover().await).is_empty());
}

/// A press that overtakes the report of its prompt's delivery (the platform had not
/// yet answered the send with the message's id): the rating is stored at once, and the
/// prompt is edited as soon as the report brings the id.
#[tokio::test]
async fn a_press_before_the_prompt_is_reported_delivered_edits_it_once_it_is() {
    let app = spawn_app(&[]).await;
    app.send(message("ana", "my week was hard")).await;
    let out = app.send(message("ana", "and I can't sleep")).await;
    let (id, payloads) = rating_prompts(&out).remove(0);
    let prompt_id: i64 = id.trim_start_matches("rating:").parse().unwrap();
    // As if the delivery report had not come back yet.
    app.forget_delivery_of_prompt(prompt_id).await;
    let out = app.send(press("ana", "ana", &payloads[2])).await;
    assert!(
        !out.iter().any(|o| matches!(o, Outbound::EditPrompt { .. })),
        "no id to edit yet: {out:?}"
    );
    let stored = app.rating_prompt(prompt_id).await;
    assert_eq!(stored.stars.map(Stars::get), Some(3));

    let out = app
        .send_undelivered(Inbound::Delivered {
            outbound_id: id.clone(),
            platform_message_id: Some("pm-late".into()),
        })
        .await;
    let mut edits = Vec::new();
    for o in out {
        if let Outbound::EditPrompt {
            platform_message_id,
            text,
            chosen,
            choices,
            ..
        } = o
        {
            edits.push((platform_message_id, text, chosen, choices.len()));
        }
    }
    assert_eq!(edits.len(), 1, "{edits:?}");
    let (pmid, text, chosen, n) = &edits[0];
    assert_eq!((pmid.as_str(), *chosen, *n), ("pm-late", Some(2), 5));
    assert!(text.contains("3 ★"), "{text}");

    // A prompt delivered before any press is not edited by its report.
    let out = app.send(message("ana", "thanks for listening")).await;
    assert!(rating_prompts(&out).is_empty());
    let out = app.send(message("ana", "it helps")).await;
    let (id2, _) = rating_prompts(&out).remove(0);
    let out = app
        .send_undelivered(Inbound::Delivered {
            outbound_id: id2,
            platform_message_id: Some("pm-again".into()),
        })
        .await;
    assert!(out.is_empty(), "nothing to edit before a press: {out:?}");
}

#[tokio::test]
async fn forged_stale_and_foreign_presses_change_nothing() {
    let app = spawn_app(&[]).await;
    app.send(message("ana", "hello")).await;
    let out = app.send(message("ana", "I am sad")).await;
    let (id, payloads) = rating_prompts(&out)[0].clone();
    let prompt_id: i64 = id.trim_start_matches("rating:").parse().unwrap();
    app.send(message("ben", "hi")).await;

    let notice = |out: &[Outbound]| match out.first() {
        Some(Outbound::Notice { text, .. }) => text.clone(),
        other => panic!("expected a notice, got {other:?}"),
    };
    // Someone else presses ana's button.
    let out = app.send(press("ana", "ben", &payloads[4])).await;
    assert!(notice(&out).contains("Only the person"));
    // A forged nonce, a made-up prompt, garbage.
    let forged = payloads[4].replace(payloads[4].split(':').nth(2).unwrap(), "forgednonce1");
    assert!(notice(&app.send(press("ana", "ana", &forged)).await).contains("no longer valid"));
    assert!(
        notice(&app.send(press("ana", "ana", "r:99999:abc:5")).await).contains("no longer valid")
    );
    assert!(notice(&app.send(press("ana", "ana", "r:1:x:7")).await).contains("no longer valid"));
    assert!(
        notice(&app.send(press("ana", "ana", "DROP TABLE users")).await)
            .contains("no longer valid")
    );
    assert_eq!(app.rating_prompt(prompt_id).await.stars, None);

    // After /end the session's prompts are closed.
    app.send(command("ana", "end", "")).await;
    let out = app.send(press("ana", "ana", &payloads[2])).await;
    assert!(notice(&out).contains("has ended"));
    assert_eq!(app.rating_prompt(prompt_id).await.stars, None);
}

/// Everything said in answer to a platform interaction (a slash command) carries its
/// handle, down to the final Done, so the adapter can keep it private to the person who
/// asked; answers to plain messages carry none.
#[tokio::test]
async fn answers_to_an_interaction_carry_its_handle() {
    let app = spawn_app(&[("KINDRED__CONVERSATION__CHECKIN", "false")]).await;
    let handle = |o: &Outbound| match o {
        Outbound::Text { interaction, .. }
        | Outbound::Prompt { interaction, .. }
        | Outbound::Done { interaction, .. }
        | Outbound::Notice { interaction, .. } => Some(interaction.clone()),
        _ => None,
    };

    let Inbound::Command {
        chat, user, name, ..
    } = command("ana", "start", "")
    else {
        unreachable!()
    };
    let said = app
        .send_undelivered(Inbound::Command {
            chat,
            user,
            message_id: None,
            name,
            args: String::new(),
            interaction: Some("42:token-42".into()),
        })
        .await;
    assert!(said.len() >= 2, "{said:?}");
    for o in &said {
        if let Some(h) = handle(o) {
            assert_eq!(h.as_deref(), Some("42:token-42"), "{o:?}");
        }
    }
    assert!(matches!(said.last(), Some(Outbound::Done { .. })));

    let said = app.send_undelivered(message("ana", "I feel alone")).await;
    assert!(said.iter().any(|o| matches!(o, Outbound::Text { .. })));
    assert!(
        said.iter().all(|o| handle(o).flatten().is_none()),
        "{said:?}"
    );
}

/// In a shared chat the answers to a button press (the next check-in question) go to
/// the press's interaction, so that only the presser sees them; in a DM they go to the chat.
#[tokio::test]
async fn answers_to_a_press_are_private_only_in_shared_chats() {
    let app = spawn_app(&[]).await;
    let group = ChatRef::group("test", "group-1", None);
    let (_, ana) = dm("ana");
    let (_, moderator) = dm("mo");
    app.send(Inbound::Moderation {
        chat: group.clone(),
        user: moderator,
        action: ModAction::Enable,
        interaction: Some("1:mod".into()),
    })
    .await;
    let next_prompt = |out: &[Outbound]| match out.last() {
        Some(Outbound::Prompt {
            choices,
            interaction,
            ..
        }) => (choices.clone(), interaction.clone()),
        other => panic!("{other:?}"),
    };

    let out = app
        .send(Inbound::Command {
            chat: group.clone(),
            user: ana.clone(),
            message_id: None,
            name: "start".into(),
            args: String::new(),
            interaction: Some("2:start".into()),
        })
        .await;
    let (choices, to) = next_prompt(&out);
    assert_eq!(to.as_deref(), Some("2:start"));
    let out = app
        .send(Inbound::Choice {
            chat: group.clone(),
            user: ana.clone(),
            payload: choices[0].payload.clone(),
            interaction: Some("3:press".into()),
        })
        .await;
    assert_eq!(next_prompt(&out).1.as_deref(), Some("3:press"));

    // The same in a DM: the next question is an ordinary message.
    let out = app.send(command("bo", "start", "")).await;
    let (choices, _) = next_prompt(&out);
    let out = app.send(press("bo", "bo", &choices[0].payload)).await;
    assert_eq!(next_prompt(&out).1, None);
}

/// The same through the running engine, where delivery reports are handled apart from
/// the people's queues: the late report's edit reaches the adapter.
#[tokio::test]
async fn the_edit_for_a_late_delivery_report_reaches_the_adapter() {
    let app = spawn_app(&[]).await;
    let (inbox, inbound) = kindred_adapter::Inbox::channel(16);
    let (to_adapter, mut outbound) = tokio::sync::mpsc::channel(64);
    let routes = std::sync::Arc::new(std::collections::HashMap::from([(
        "test".to_string(),
        to_adapter,
    )]));
    let (stop, stopped) = tokio::sync::broadcast::channel(1);
    let serving = tokio::spawn(kindred::engine::runtime::serve(
        app.engine.clone(),
        inbound,
        routes,
        stopped,
    ));
    inbox
        .send(message("ana", "my week was hard"))
        .await
        .unwrap();
    inbox
        .send(message("ana", "and I can't sleep"))
        .await
        .unwrap();
    // Nothing reports deliveries here: the prompt has no message id when it is pressed.
    let (id, payloads) = loop {
        let o = next_outbound(&mut outbound).await;
        if let Some(p) = rating_prompts(std::slice::from_ref(&o)).pop() {
            break p;
        }
    };
    inbox.send(press("ana", "ana", &payloads[3])).await.unwrap();
    let prompt_id: i64 = id.trim_start_matches("rating:").parse().unwrap();
    let pressed = std::time::Instant::now();
    while app.rating_prompt(prompt_id).await.stars.map(Stars::get) != Some(4) {
        assert!(
            pressed.elapsed().as_secs() < 20,
            "the press is stored in time"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    inbox
        .send(Inbound::Delivered {
            outbound_id: id,
            platform_message_id: Some("pm-late".into()),
        })
        .await
        .unwrap();
    loop {
        if let Outbound::EditPrompt {
            platform_message_id,
            chosen,
            ..
        } = next_outbound(&mut outbound).await
        {
            assert_eq!((platform_message_id.as_str(), chosen), ("pm-late", Some(3)));
            break;
        }
    }
    stop.send(()).unwrap();
    // The reports lane stays open until the last adapter (here, the test) is gone.
    drop(inbox);
    let _ = serving.await;
}
