//! What a person asks us to forget or not to keep, and their own record.

use crate::helpers::*;
use kindred_adapter::{ChatRef, Inbound, Outbound};

#[tokio::test]
async fn forget_leaves_no_row_of_that_user() {
    let app = spawn_app(&[]).await;
    for t in ["hello", "I'm lonely", "nobody calls me"] {
        app.send(message("ana", t)).await;
    }
    app.send(message_with_id("ana", "a-41", "one more")).await;
    app.send(message("ben", "hi")).await;
    app.send(message_with_id("ben", "b-7", "still here")).await;
    assert_eq!(
        app.handled_message_keys().await,
        ["msg:dm-ana:a-41", "msg:dm-ben:b-7"]
    );
    let ana = app.user("ana").await.unwrap();
    let ben = app.user("ben").await.unwrap();
    let out = app.send(command("ana", "forget", "")).await;
    let Outbound::Prompt { choices, .. } = &out[0] else {
        panic!("{out:?}")
    };
    // Ben cannot confirm ana's deletion.
    app.send(press("ana", "ben", &choices[0].payload)).await;
    assert!(app.user("ana").await.is_some());
    let out = app.send(press("ana", "ana", &choices[0].payload)).await;
    assert!(texts(&out)[0].contains("deleted"));

    assert!(app.user("ana").await.is_none());
    assert!(app.conversations_of(ana.id).await.is_empty());
    assert_eq!(app.turns_containing("lonely").await, 0);
    assert_eq!(app.rating_prompts_of(ana.id).await, 0);
    assert_eq!(app.orphan_turns().await, 0);
    // The key of ana's message went with her; ben's stays until it is a week old.
    assert_eq!(app.handled_message_keys().await, ["msg:dm-ben:b-7"]);
    let store = &app.engine.store;
    assert_eq!(
        store
            .prune_handled_events(kindred::store::now_ms() - 60_000)
            .await
            .unwrap(),
        0
    );
    assert!(
        store
            .prune_handled_events(kindred::store::now_ms() + 1)
            .await
            .unwrap()
            >= 1
    );
    assert!(app.handled_message_keys().await.is_empty());
    // Ben's data is untouched.
    assert_eq!(app.conversations_of(ben.id).await.len(), 1);
    // A stale confirm after deletion does nothing harmful.
    let out = app.send(press("ana", "ana", &choices[0].payload)).await;
    assert!(matches!(&out[0], Outbound::Notice { .. }));
    assert!(app.user("ana").await.is_none());
}

#[tokio::test]
async fn a_person_who_asks_us_not_to_keep_their_words_is_answered_and_then_erased() {
    let app = spawn_app(&[]).await;
    // An earlier conversation, ended, then the choice.
    app.send(message(
        "ana",
        "my sister and I had a fight about the wedding",
    ))
    .await;
    app.send(command("ana", "end", "")).await;
    let out = app.send(command("ana", "privacy", "")).await;
    assert!(texts(&out)[0].contains("I keep your words"), "{out:?}");
    let out = app.send(command("ana", "privacy", "off")).await;
    assert!(texts(&out)[0].contains("erased now"), "{out:?}");
    assert_eq!(
        app.turns_containing("wedding").await,
        0,
        "the ended conversation's words are erased at once"
    );

    // A new conversation is answered from its live words, and erased when it ends.
    app.send(message("ana", "my exam results came out today"))
        .await;
    let out = app.send(message("ana", "I failed chemistry")).await;
    assert!(!texts(&out).is_empty(), "answered: {out:?}");
    assert_eq!(
        app.turns_containing("chemistry").await,
        1,
        "kept while the conversation is open"
    );
    let ana = app.user("ana").await.unwrap();
    let open = app.engine.store.sessions_of_user(ana.id).await.unwrap();
    let live = open.iter().find(|s| s.ended_at.is_none()).unwrap();
    let context = app.engine.store.turns(live.id).await.unwrap();
    assert!(context.iter().any(|t| t.text.contains("exam results")));
    // A person who keeps their words is untouched, and exported; ana never is.
    app.send(message("ben", "work has been rough this week"))
        .await;
    app.send(command("ben", "end", "")).await;
    let exported = serde_json::to_string(
        &kindred::export::export(
            &app.engine.store,
            &kindred::export::ExportOptions::everything(),
        )
        .await
        .unwrap(),
    )
    .unwrap();
    assert!(exported.contains("work has been rough"));
    assert!(!exported.contains("chemistry") && !exported.contains("wedding"));
    app.send(command("ana", "end", "")).await;
    assert_eq!(app.turns_containing("chemistry").await, 0);
    assert_eq!(app.turns_containing("exam results").await, 0);
    // Strategies and ratings stay; the choice can be undone.
    let turns: i64 = app
        .engine
        .store
        .sessions_of_user(ana.id)
        .await
        .unwrap()
        .len() as i64;
    assert!(turns >= 2);
    let out = app.send(command("ana", "privacy", "on")).await;
    assert!(texts(&out)[0].contains("keep the words"), "{out:?}");
    let out = app.send(command("ana", "privacy", "maybe")).await;
    assert!(texts(&out)[0].contains("/privacy on"), "{out:?}");
}

#[tokio::test]
async fn mydata_is_the_persons_own_record_and_only_in_a_direct_chat() {
    let app = spawn_app(&[]).await;
    app.send(message("ana", "I keep arguing with my flatmate"))
        .await;
    app.send(message("ben", "my dog is sick")).await;
    let out = app.send(command("ana", "mydata", "")).await;
    let Some(Outbound::File {
        file_name,
        content,
        caption,
        ..
    }) = out.iter().find(|o| matches!(o, Outbound::File { .. }))
    else {
        panic!("no file: {out:?}")
    };
    assert!(file_name.ends_with(".json") && caption.contains("/forget"));
    let record: serde_json::Value = serde_json::from_str(content).unwrap();
    assert!(content.contains("arguing with my flatmate"));
    assert!(!content.contains("my dog is sick"));
    assert_eq!(record["you"]["words_kept"], true);
    let dialog = record["conversations"][0]["dialog"].as_array().unwrap();
    assert!(dialog
        .iter()
        .any(|t| t["speaker"] == "supporter" && t["annotation"]["strategy"].is_string()));
    // Someone who never wrote has nothing stored.
    let out = app.send(command("cleo", "mydata", "")).await;
    assert!(
        !out.iter().any(|o| matches!(o, Outbound::File { .. })),
        "{out:?}"
    );
    // In a shared chat others could read it: only a pointer to the direct chat.
    let group = ChatRef::group("test", "g-1", None);
    let out = app
        .send(Inbound::Command {
            chat: group,
            user: crate::helpers::dm("ana").1,
            message_id: None,
            name: "mydata".into(),
            args: String::new(),
            interaction: None,
        })
        .await;
    assert!(
        !out.iter().any(|o| matches!(o, Outbound::File { .. })),
        "{out:?}"
    );
}
