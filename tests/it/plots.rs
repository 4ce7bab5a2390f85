//! `kindred stats --plot DIR --html FILE` on a small database: every chart is written as
//! SVG and PNG, shows what the database holds, and is a real, non-empty image.

use std::collections::HashSet;

use kindred::store::{FieldValue, SessionField};

use crate::helpers::*;

/// A PNG's size and how many of its pixels are not white.
fn png_ink(path: &std::path::Path) -> (u32, u32, usize, usize) {
    let decoder = png::Decoder::new(std::fs::File::open(path).unwrap());
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    let channels = info.color_type.samples();
    let pixels: Vec<&[u8]> = buf[..info.buffer_size()].chunks(channels).collect();
    let ink = pixels
        .iter()
        .filter(|p| p.iter().take(3).any(|&c| c < 250))
        .count();
    let colours: HashSet<&[u8]> = pixels.iter().cloned().collect();
    (info.width, info.height, ink, colours.len())
}

#[tokio::test]
async fn stats_draws_every_chart_as_svg_and_png_and_one_html_page() {
    let app = spawn_app(&[("KINDRED__CONVERSATION__CHECKIN", "false")]).await;
    let mut replies = 0;
    for who in ["ana", "ben", "cleo"] {
        for i in 0..4 {
            let out = app
                .send(message(who, &format!("message {i} about my week")))
                .await;
            replies += super::helpers::replies(&out).len();
            for (_, choices) in rating_prompts(&out) {
                app.send(press(who, who, &choices[3])).await;
            }
        }
        let user = app.user(who).await.unwrap();
        let s = &app.conversations_of(user.id).await[0];
        for (field, v) in [
            (SessionField::IntensityBefore, 5),
            (SessionField::IntensityAfter, 3),
        ] {
            app.engine
                .store
                .set_session_field(s.id, field, FieldValue::Int(v))
                .await
                .unwrap();
        }
    }
    assert_eq!(replies, 12);
    let out_dir = app.dir.path().join("charts");
    let html = app.dir.path().join("report.html");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_kindred"))
        .args(["stats", "--plot"])
        .arg(&out_dir)
        .arg("--html")
        .arg(&html)
        .env("KINDRED__STORAGE__DATA_DIR", app.dir.path())
        .envs(on_postgres().then(|| {
            (
                "KINDRED__STORAGE__URL",
                database_of(app.dir.path()).url().to_string(),
            )
        }))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The summary still goes to standard output.
    assert!(String::from_utf8_lossy(&out.stdout).contains("ratings given"));

    for name in [
        "strategies_by_progress",
        "rating_by_phase",
        "ratings_over_time",
        "intensity_before_after",
    ] {
        let svg = std::fs::read_to_string(out_dir.join(format!("{name}.svg"))).unwrap();
        assert!(
            svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"),
            "{name}"
        );
        let (w, h, ink, colours) = png_ink(&out_dir.join(format!("{name}.png")));
        assert_eq!((w, h), (900, 540), "{name}");
        assert!(ink > 900 * 540 / 100, "{name}: only {ink} pixels drawn");
        assert!(
            colours > 8,
            "{name}: {colours} colours, text and marks expected"
        );
    }
    let strategies = std::fs::read_to_string(out_dir.join("strategies_by_progress.svg")).unwrap();
    assert!(
        strategies.contains("(12 replies)"),
        "the chart counts what is stored"
    );
    assert!(strategies.contains("Question") && strategies.contains("Providing Suggestions"));
    let ratings = std::fs::read_to_string(out_dir.join("rating_by_phase.svg")).unwrap();
    assert!(
        ratings.contains("(6 ratings)"),
        "two prompts per person, all rated"
    );
    let intensity = std::fs::read_to_string(out_dir.join("intensity_before_after.svg")).unwrap();
    assert!(intensity.contains("before (3) and after (3)"));

    if let Ok(keep) = std::env::var("KINDRED_KEEP_PLOTS") {
        for f in std::fs::read_dir(&out_dir).unwrap().flatten() {
            std::fs::copy(f.path(), std::path::Path::new(&keep).join(f.file_name())).unwrap();
        }
    }
    let page = std::fs::read_to_string(&html).unwrap();
    assert_eq!(page.matches("<svg").count(), 4);
    assert!(page.contains("ratings given"));
    // No one's words or names.
    for private in ["about my week", "ana", "cleo"] {
        assert!(!page.contains(private), "{private} in the report");
    }
}
