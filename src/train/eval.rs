//! `kindred eval`: perplexity, BLEU-2, ROUGE-L, Distinct-1/2 and strategy accuracy on an
//! ESConv file, in Joint mode (the model picks the strategy) or Oracle mode (gold strategy).

use std::io::Write;
use std::path::Path;

use anyhow::Result;
use serde::Serialize;

use super::data::{build_examples, read_conversations, Example, ExampleOptions};
use super::metrics::{corpus_bleu, distinct, rouge_l, tokenize};
use super::trainer::{label_scores, reply_nll};
use crate::model::{DecodingOptions, JointModel, Strategy, StrategyChoice};

#[derive(Debug, Clone, Serialize)]
pub struct EvalReport {
    pub mode: String,
    pub examples: usize,
    /// Per token of the model's own tokenizer, replies cut at the recipe's 40 tokens.
    pub ppl: f64,
    /// Per word (the metrics' word tokenisation) of the whole reply: the replies' total
    /// negative log-likelihood over their number of words, comparable across tokenizers.
    pub ppl_word: f64,
    pub bleu2: f64,
    #[serde(rename = "rougeL")]
    pub rouge_l: f64,
    pub dist1: f64,
    pub dist2: f64,
    /// Argmax of the predicted strategy distribution equals the gold strategy (percent).
    pub strategy_acc: f64,
    pub strategy_acc_top3: f64,
    /// Share of each strategy among the strategies used in the replies and in the gold data (percent).
    pub predicted_distribution: Vec<(String, f64)>,
    pub gold_distribution: Vec<(String, f64)>,
}

#[derive(Debug, Serialize)]
struct Prediction<'a> {
    context: Vec<String>,
    reference: &'a str,
    reply: &'a str,
    gold_strategy: &'a str,
    predicted_strategy: Option<&'a str>,
    strategy_probs: [f32; 8],
}

fn distribution(counts: &[usize; 8]) -> Vec<(String, f64)> {
    let total: usize = counts.iter().sum();
    Strategy::ALL
        .iter()
        .map(|s| {
            (
                s.name().to_string(),
                100.0 * counts[s.index()] as f64 / total.max(1) as f64,
            )
        })
        .collect()
}

pub struct EvalOptions<'a> {
    pub oracle: bool,
    pub limit: Option<usize>,
    pub seed: u64,
    pub batch: usize,
    pub decoding: DecodingOptions,
    pub out: Option<&'a Path>,
}

pub fn evaluate(joint: &JointModel, data: &Path, opts: &EvalOptions) -> Result<EvalReport> {
    let convs = read_conversations(data)?;
    let mut examples: Vec<Example> = build_examples(joint, &convs, &ExampleOptions::default())?;
    // The same examples with whole replies, for the word-level perplexity. The cut
    // labels are a prefix of the whole ones, so one scoring serves both.
    let mut whole: Vec<Example> = build_examples(
        joint,
        &convs,
        &ExampleOptions {
            max_reply_tokens: usize::MAX / 2,
            ..ExampleOptions::default()
        },
    )?;
    if let Some(n) = opts.limit {
        examples.truncate(n);
        whole.truncate(n);
    }
    // What the model can read at all (a reply longer than its positions is scored as far
    // as they go; none of ESConv's comes near the shipped models' limits).
    let positions = joint.model.max_positions();
    for ex in whole.iter_mut() {
        let room = match joint.context.format {
            crate::model::ContextFormat::ChatMl(_) => positions.saturating_sub(ex.context.len()),
            crate::model::ContextFormat::EosSeparated => positions,
        };
        ex.labels.truncate(room.max(1));
    }
    anyhow::ensure!(
        !examples.is_empty(),
        "{} holds no supporter turns to evaluate",
        data.display()
    );
    let scores = label_scores(joint, &whole, 16)?;
    let (mut nll_cut, mut tokens_cut, mut nll_whole, mut words) = (0f64, 0usize, 0f64, 0usize);
    for ((cut, full), s) in examples.iter().zip(&whole).zip(&scores) {
        let shared = cut.labels.len().min(full.labels.len());
        let (l, n) = reply_nll(&cut.labels[..shared], &s[..shared], &joint.strategy_ids);
        nll_cut += l;
        tokens_cut += n;
        nll_whole += reply_nll(&full.labels, s, &joint.strategy_ids).0;
        words += tokenize(&full.reply).len();
    }
    let ppl = (nll_cut / tokens_cut.max(1) as f64).exp();
    let ppl_word = (nll_whole / words.max(1) as f64).exp();

    let mut out = match opts.out {
        Some(p) => Some(std::io::BufWriter::new(std::fs::File::create(p)?)),
        None => None,
    };
    let (mut hyps, mut refs) = (Vec::new(), Vec::new());
    let (mut top1, mut top3) = (0usize, 0usize);
    let (mut predicted, mut gold) = ([0usize; 8], [0usize; 8]);
    let bar = indicatif::ProgressBar::new(examples.len() as u64);
    for (bi, chunk) in examples.chunks(opts.batch.max(1)).enumerate() {
        let contexts: Vec<Vec<u32>> = chunk.iter().map(|e| e.context.clone()).collect();
        let choices: Vec<StrategyChoice> = chunk
            .iter()
            .map(|e| {
                if opts.oracle {
                    StrategyChoice::Given(e.strategy)
                } else {
                    StrategyChoice::Predict
                }
            })
            .collect();
        let mut decoding = opts.decoding.clone();
        decoding.seed = Some(opts.seed.wrapping_add(bi as u64));
        let replies = joint.reply_batch(&contexts, &choices, &decoding)?;
        for (e, r) in chunk.iter().zip(&replies) {
            let mut order: Vec<usize> = (0..8).collect();
            order.sort_by(|a, b| r.strategy_probs[*b].total_cmp(&r.strategy_probs[*a]));
            top1 += usize::from(order[0] == e.strategy.index());
            top3 += usize::from(order[..3].contains(&e.strategy.index()));
            gold[e.strategy.index()] += 1;
            if let Some(s) = r.strategy {
                predicted[s.index()] += 1;
            }
            hyps.push(tokenize(&r.text));
            refs.push(tokenize(&e.reply));
            if let Some(w) = out.as_mut() {
                let context = convs[e.conversation].turns[..e.turn]
                    .iter()
                    .map(|t| t.text.clone())
                    .collect();
                let p = Prediction {
                    context,
                    reference: &e.reply,
                    reply: &r.text,
                    gold_strategy: e.strategy.name(),
                    predicted_strategy: r.strategy.map(|s| s.name()),
                    strategy_probs: r.strategy_probs,
                };
                writeln!(w, "{}", serde_json::to_string(&p)?)?;
            }
        }
        bar.inc(chunk.len() as u64);
    }
    bar.finish_and_clear();
    let n = examples.len() as f64;
    Ok(EvalReport {
        mode: if opts.oracle { "oracle" } else { "joint" }.into(),
        examples: examples.len(),
        ppl,
        ppl_word,
        bleu2: corpus_bleu(&hyps, &refs, 2),
        rouge_l: rouge_l(&hyps, &refs),
        dist1: distinct(&hyps, 1),
        dist2: distinct(&hyps, 2),
        strategy_acc: 100.0 * top1 as f64 / n,
        strategy_acc_top3: 100.0 * top3 as f64 / n,
        predicted_distribution: distribution(&predicted),
        gold_distribution: distribution(&gold),
    })
}

impl EvalReport {
    pub fn table(&self) -> String {
        let mut s = format!(
            "mode {} · {} replies\n  perplexity        {:>8.2}   (per token)\n  perplexity        {:>8.2}   (per word)\n  BLEU-2            {:>8.2}\n  ROUGE-L           {:>8.2}\n  Distinct-1        {:>8.2}\n  Distinct-2        {:>8.2}\n  strategy top-1    {:>8.2} %\n  strategy top-3    {:>8.2} %\n  strategy                          predicted    gold\n",
            self.mode, self.examples, self.ppl, self.ppl_word, self.bleu2, self.rouge_l, self.dist1, self.dist2, self.strategy_acc, self.strategy_acc_top3
        );
        for ((name, p), (_, g)) in self
            .predicted_distribution
            .iter()
            .zip(&self.gold_distribution)
        {
            s.push_str(&format!("  {name:<30} {p:>9.1} % {g:>6.1} %\n"));
        }
        s
    }
}
