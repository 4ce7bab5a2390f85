//! `kindred stats --plot DIR` and `--html FILE`: the analyses of the ESConv paper on
//! Kindred's own conversations, drawn with `plotters` as SVG and PNG.
//!
//! * how the strategies are spread over a conversation's progress (ESConv, figure 4:
//!   questions early, suggestions and affirmation later);
//! * the mean rating by conversation phase (where the replies help least);
//! * ratings over time (did a new model help?);
//! * the intensity of distress people reported before and after (ESConv's survey).
//!
//! Nothing drawn names a person or quotes anyone.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Once;

use anyhow::{Context, Result};
use plotters::coord::Shift;
use plotters::prelude::*;

use crate::model::Strategy;
use crate::store::{PlotRows, Store};

/// Conversation progress in fifths.
pub const PHASES: usize = 5;
const PHASE_LABELS: [&str; PHASES] = ["0–20%", "20–40%", "40–60%", "60–80%", "80–100%"];

/// What the charts show, counted from the store.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct PlotData {
    /// Replies by phase and strategy (in `Strategy::ALL` order).
    pub strategy_by_phase: [[u64; 8]; PHASES],
    /// (sum of stars, ratings) by the phase of the second rated reply.
    pub rating_by_phase: [(u64, u64); PHASES],
    /// (sum of stars, ratings) by UTC day (`YYYY-MM-DD`).
    pub ratings_by_day: BTreeMap<String, (u64, u64)>,
    /// How many reported each intensity 1–5, before and after.
    pub intensity_before: [u64; 5],
    pub intensity_after: [u64; 5],
}

/// The phase of turn `idx` of a conversation of `n` turns.
fn phase(idx: i64, n: i64) -> usize {
    if n <= 1 {
        return 0;
    }
    let progress = idx.max(0) as f64 / (n - 1) as f64;
    ((progress * PHASES as f64) as usize).min(PHASES - 1)
}

impl PlotData {
    pub fn from_rows(rows: &PlotRows) -> Self {
        let mut d = PlotData::default();
        for (idx, n, strategy) in &rows.strategies {
            if let Some(k) = Strategy::ALL.iter().position(|s| s.name() == strategy) {
                d.strategy_by_phase[phase(*idx, *n)][k] += 1;
            }
        }
        for (stars, at, idx, n) in &rows.ratings {
            let p = &mut d.rating_by_phase[phase(*idx, *n)];
            p.0 += *stars as u64;
            p.1 += 1;
            let day = chrono::DateTime::from_timestamp_millis(*at)
                .map(|t| t.format("%Y-%m-%d").to_string())
                .unwrap_or_default();
            let e = d.ratings_by_day.entry(day).or_default();
            e.0 += *stars as u64;
            e.1 += 1;
        }
        for (before, after) in &rows.intensities {
            for (v, into) in [
                (before, &mut d.intensity_before),
                (after, &mut d.intensity_after),
            ] {
                if let Some(v @ 1..=5) = v {
                    into[*v as usize - 1] += 1;
                }
            }
        }
        d
    }

    pub async fn collect(store: &Store) -> Result<Self> {
        Ok(Self::from_rows(&store.plot_rows().await?))
    }
}

/// PNG text needs a font; the one shipped in `third_party/fonts` is built in, so the
/// charts look the same on every machine (and need no fonts installed).
fn register_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let font: &'static [u8] = include_bytes!("../../third_party/fonts/DejaVuSans.ttf");
        if plotters::style::register_font("sans-serif", FontStyle::Normal, font).is_err() {
            tracing::warn!("the built-in font could not be read; PNG charts will have no text");
        }
    });
}

/// The charts, by file stem.
const CHARTS: [&str; 4] = [
    "strategies_by_progress",
    "rating_by_phase",
    "ratings_over_time",
    "intensity_before_after",
];

/// Draws chart `name` (one of [`CHARTS`]) on any backend.
fn draw<DB: DrawingBackend>(name: &str, root: &DrawingArea<DB, Shift>, d: &PlotData) -> Result<()>
where
    DB::ErrorType: 'static,
{
    match name {
        "strategies_by_progress" => draw_strategies(root, d),
        "rating_by_phase" => draw_rating_by_phase(root, d),
        "ratings_over_time" => draw_ratings_over_time(root, d),
        _ => draw_intensity(root, d),
    }
}

const SIZE: (u32, u32) = (900, 540);

/// Writes every chart as `DIR/NAME.svg` and `DIR/NAME.png`; returns the files.
pub fn write_plots(data: &PlotData, dir: &Path) -> Result<Vec<PathBuf>> {
    register_font();
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut written = Vec::new();
    // The same drawing on both backends (a macro: each backend borrows its path).
    macro_rules! each_chart {
        ($backend:ident, $ext:literal) => {
            for name in CHARTS {
                let path = dir.join(format!("{name}.{}", $ext));
                {
                    let root = $backend::new(&path, SIZE).into_drawing_area();
                    draw(name, &root, data)?;
                    root.present().map_err(err)?;
                }
                written.push(path);
            }
        };
    }
    each_chart!(SVGBackend, "svg");
    each_chart!(BitMapBackend, "png");
    Ok(written)
}

/// One HTML page with every chart (inline SVG) and the summary table.
pub fn html_report(data: &PlotData, summary: &str) -> Result<String> {
    register_font();
    let mut page = String::from(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Kindred statistics</title>\
         <style>body{font-family:sans-serif;max-width:960px;margin:2em auto;color:#222}\
         pre{background:#f5f5f5;padding:1em}figure{margin:2em 0}</style></head><body>\n\
         <h1>Kindred statistics</h1>\n",
    );
    page.push_str(&format!(
        "<p>Generated {} UTC. No names and no words: counts and means only.</p>\n<pre>{}</pre>\n",
        chrono::Utc::now().format("%Y-%m-%d %H:%M"),
        escape(summary)
    ));
    for name in CHARTS {
        let mut svg = String::new();
        {
            let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
            draw(name, &root, data)?;
            root.present().map_err(|e| anyhow::anyhow!("{e}"))?;
        }
        page.push_str(&format!("<figure id=\"{name}\">{svg}</figure>\n"));
    }
    page.push_str("</body></html>\n");
    Ok(page)
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn err<E: std::fmt::Display>(e: E) -> anyhow::Error {
    anyhow::anyhow!("drawing failed: {e}")
}

const PALETTE: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
];

fn draw_strategies<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, d: &PlotData) -> Result<()>
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE).map_err(err)?;
    let shares: Vec<[f64; 8]> = d
        .strategy_by_phase
        .iter()
        .map(|counts| {
            let total: u64 = counts.iter().sum();
            let mut s = [0.0; 8];
            for (k, c) in counts.iter().enumerate() {
                s[k] = if total == 0 {
                    0.0
                } else {
                    100.0 * *c as f64 / total as f64
                };
            }
            s
        })
        .collect();
    let top = shares
        .iter()
        .flatten()
        .cloned()
        .fold(10.0, f64::max)
        .min(100.0)
        * 1.1;
    let replies: u64 = d.strategy_by_phase.iter().flatten().sum();
    let mut chart = ChartBuilder::on(root)
        .caption(
            format!("Strategies across conversation progress ({replies} replies)"),
            ("sans-serif", 22),
        )
        .margin(16)
        .margin_right(40)
        .x_label_area_size(40)
        .y_label_area_size(50)
        .build_cartesian_2d(0f64..(PHASES - 1) as f64, 0f64..top)
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_labels(PHASES)
        .x_label_formatter(&|x| PHASE_LABELS[(x.round() as usize).min(PHASES - 1)].to_string())
        .y_desc("share of replies (%)")
        .x_desc("conversation progress")
        .draw()
        .map_err(err)?;
    for (k, s) in Strategy::ALL.iter().enumerate() {
        let color = PALETTE[k];
        chart
            .draw_series(LineSeries::new(
                (0..PHASES).map(|p| (p as f64, shares[p][k])),
                color.stroke_width(2),
            ))
            .map_err(err)?
            .label(s.name())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2))
            });
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font(("sans-serif", 13))
        .draw()
        .map_err(err)?;
    Ok(())
}

fn bars<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    caption: String,
    labels: &[String],
    values: &[Option<f64>],
    y_max: f64,
    y_desc: &str,
) -> Result<()>
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE).map_err(err)?;
    let n = labels.len().max(1);
    let mut chart = ChartBuilder::on(root)
        .caption(caption, ("sans-serif", 22))
        .margin(16)
        .x_label_area_size(40)
        .y_label_area_size(50)
        .build_cartesian_2d(0f64..n as f64, 0f64..y_max)
        .map_err(err)?;
    let labels_owned = labels.to_vec();
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(n * 2 + 1)
        .x_label_formatter(&move |x| {
            let i = x.floor() as usize;
            if (x - i as f64 - 0.5).abs() < 0.26 {
                labels_owned.get(i).cloned().unwrap_or_default()
            } else {
                String::new()
            }
        })
        .y_desc(y_desc)
        .draw()
        .map_err(err)?;
    chart
        .draw_series(values.iter().enumerate().filter_map(|(i, v)| {
            v.map(|v| {
                Rectangle::new(
                    [(i as f64 + 0.15, 0.0), (i as f64 + 0.85, v)],
                    PALETTE[0].filled(),
                )
            })
        }))
        .map_err(err)?;
    Ok(())
}

fn draw_rating_by_phase<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    d: &PlotData,
) -> Result<()>
where
    DB::ErrorType: 'static,
{
    let ratings: u64 = d.rating_by_phase.iter().map(|(_, c)| c).sum();
    let labels: Vec<String> = (0..PHASES)
        .map(|p| format!("{} (n={})", PHASE_LABELS[p], d.rating_by_phase[p].1))
        .collect();
    let values: Vec<Option<f64>> = d
        .rating_by_phase
        .iter()
        .map(|(sum, c)| (*c > 0).then(|| *sum as f64 / *c as f64))
        .collect();
    bars(
        root,
        format!("Mean rating by conversation phase ({ratings} ratings)"),
        &labels,
        &values,
        5.0,
        "mean stars (1–5)",
    )
}

fn draw_ratings_over_time<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    d: &PlotData,
) -> Result<()>
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE).map_err(err)?;
    let days: Vec<(&String, &(u64, u64))> = d.ratings_by_day.iter().collect();
    let n = days.len().max(1);
    let ratings: u64 = days.iter().map(|(_, (_, c))| c).sum();
    let mut chart = ChartBuilder::on(root)
        .caption(
            format!("Ratings over time ({ratings} ratings)"),
            ("sans-serif", 22),
        )
        .margin(16)
        .x_label_area_size(40)
        .y_label_area_size(50)
        .build_cartesian_2d(-0.5f64..(n as f64 - 0.5), 0f64..5.5)
        .map_err(err)?;
    let names: Vec<String> = days.iter().map(|(d, _)| d.to_string()).collect();
    chart
        .configure_mesh()
        .x_labels(n.min(8))
        .x_label_formatter(&move |x| {
            let i = x.round();
            if (x - i).abs() < 0.01 && i >= 0.0 {
                names.get(i as usize).cloned().unwrap_or_default()
            } else {
                String::new()
            }
        })
        .y_desc("mean stars that day")
        .draw()
        .map_err(err)?;
    let points: Vec<(f64, f64)> = days
        .iter()
        .enumerate()
        .map(|(i, (_, (sum, c)))| (i as f64, *sum as f64 / (*c).max(1) as f64))
        .collect();
    chart
        .draw_series(LineSeries::new(points.clone(), PALETTE[0].stroke_width(2)))
        .map_err(err)?;
    chart
        .draw_series(
            points
                .iter()
                .map(|p| Circle::new(*p, 4, PALETTE[0].filled())),
        )
        .map_err(err)?;
    Ok(())
}

fn draw_intensity<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, d: &PlotData) -> Result<()>
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE).map_err(err)?;
    let top = d
        .intensity_before
        .iter()
        .chain(&d.intensity_after)
        .cloned()
        .max()
        .unwrap_or(0)
        .max(1) as f64
        * 1.15;
    let (nb, na): (u64, u64) = (
        d.intensity_before.iter().sum(),
        d.intensity_after.iter().sum(),
    );
    let mut chart = ChartBuilder::on(root)
        .caption(
            format!("Intensity of distress: before ({nb}) and after ({na})"),
            ("sans-serif", 22),
        )
        .margin(16)
        .x_label_area_size(40)
        .y_label_area_size(50)
        .build_cartesian_2d(0.5f64..5.5, 0f64..top)
        .map_err(err)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(5)
        .x_label_formatter(&|x| format!("{}", x.round() as i64))
        .x_desc("intensity (1 = mild, 5 = extreme)")
        .y_desc("people")
        .draw()
        .map_err(err)?;
    for (offset, counts, color, label) in [
        (-0.38, &d.intensity_before, PALETTE[3], "before"),
        (0.02, &d.intensity_after, PALETTE[2], "after"),
    ] {
        chart
            .draw_series(counts.iter().enumerate().map(move |(i, c)| {
                let x = i as f64 + 1.0 + offset;
                Rectangle::new([(x, 0.0), (x + 0.36, *c as f64)], color.filled())
            }))
            .map_err(err)?
            .label(label)
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], color.filled()));
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font(("sans-serif", 13))
        .draw()
        .map_err(err)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_counted_by_phase_day_and_level() {
        let rows = PlotRows {
            strategies: vec![
                (1, 11, "Question".into()),
                (10, 11, "Providing Suggestions".into()),
                (5, 11, "Question".into()),
                (3, 11, "not a strategy".into()),
            ],
            ratings: vec![(4, 86_400_000, 2, 11), (2, 86_400_000 + 5, 10, 11)],
            intensities: vec![(Some(5), Some(2)), (Some(4), None), (None, Some(9))],
        };
        let d = PlotData::from_rows(&rows);
        assert_eq!(d.strategy_by_phase[0][0], 1);
        assert_eq!(d.strategy_by_phase[2][0], 1);
        assert_eq!(d.strategy_by_phase[4][5], 1);
        assert_eq!(d.strategy_by_phase.iter().flatten().sum::<u64>(), 3);
        assert_eq!(d.rating_by_phase[1], (4, 1));
        assert_eq!(d.rating_by_phase[4], (2, 1));
        assert_eq!(d.ratings_by_day["1970-01-02"], (6, 2));
        assert_eq!(d.intensity_before, [0, 0, 0, 1, 1]);
        assert_eq!(
            d.intensity_after,
            [0, 1, 0, 0, 0],
            "out-of-range answers are left out"
        );
    }
}
