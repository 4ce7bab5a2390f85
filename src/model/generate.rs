//! Joint decoding: the strategy first, then the reply conditioned on it.
//!
//! Logit processing follows transformers' `generate` order so that a given set of options
//! means the same thing here as in the reference code: repetition penalty, no-repeat
//! n-grams, minimum length and banned tokens first, then temperature, top-k and top-p.

use super::decoding::{DecodingOptions, StrategySelection};
use super::lineage::Lineage;
use super::network::Network;
use super::sampler::{argmax, banned_ngram_tokens, pick, softmax, Candidates};
use super::strategy::Strategy;
use super::tokenizer::Tokenizer;
use anyhow::Result;
use candle_core::{DType, Tensor};
use rand::{Rng, SeedableRng};
use serde::Serialize;

/// How the strategy of a reply is chosen.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum StrategyChoice {
    /// The Joint model predicts it.
    Predict,
    /// The Joint model predicts it among all but these (e.g. no suggestions or
    /// information for a person in imminent danger).
    PredictExcept(&'static [Strategy]),
    /// Oracle mode: a given strategy.
    Given(Strategy),
}

/// A generated reply.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Reply {
    pub text: String,
    /// The strategy used; `None` only when a paper-lineage model began without one.
    pub strategy: Option<Strategy>,
    /// The model's distribution over the 8 strategies (in `Strategy::ALL` order).
    pub strategy_probs: [f32; 8],
    /// The reply's token ids (strategy token and eos excluded).
    pub tokens: Vec<u32>,
}

thread_local! {
    /// A copy of one row of logits, for the logits processors to change (see
    /// `JointModel::sample_row`), reused from one token to the next.
    static ROW: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// The Joint model: a network (BlenderBot-small or a Llama-family backbone), its
/// tokenizer and what its lineage needs.
pub struct JointModel {
    pub model: Network,
    pub tokenizer: Tokenizer,
    pub lineage: Lineage,
    pub strategy_ids: [u32; 8],
    pub context: super::context::ContextBuilder,
    pub defaults: DecodingOptions,
    pub situation: bool,
}

impl JointModel {
    /// Encoder ids for a conversation, built the way this model was trained.
    pub fn context_ids(
        &self,
        situation: Option<&str>,
        turns: &[super::context::ContextTurn],
    ) -> Result<Vec<u32>> {
        let situation = if self.situation { situation } else { None };
        self.context.build(&self.tokenizer, situation, turns)
    }

    fn strategy_of(&self, token: u32) -> Option<Strategy> {
        self.strategy_ids
            .iter()
            .position(|t| *t == token)
            .map(|i| Strategy::ALL[i])
    }

    /// One reply for one context.
    pub fn reply(
        &self,
        context: &[u32],
        choice: StrategyChoice,
        opts: &DecodingOptions,
    ) -> Result<Reply> {
        Ok(self
            .reply_batch(&[context.to_vec()], &[choice], opts)?
            .pop()
            .expect("one reply per context"))
    }

    /// Replies for several contexts at once (batched decoding: one forward pass per step
    /// serves every conversation, which is what makes concurrent users cheap).
    pub fn reply_batch(
        &self,
        contexts: &[Vec<u32>],
        choices: &[StrategyChoice],
        opts: &DecodingOptions,
    ) -> Result<Vec<Reply>> {
        anyhow::ensure!(
            contexts.len() == choices.len(),
            "one strategy choice per context"
        );
        if contexts.is_empty() {
            return Ok(Vec::new());
        }
        opts.validate().map_err(anyhow::Error::msg)?;
        let eos = self.model.eos_token_id();
        let mut rng = match opts.seed {
            Some(s) => rand::rngs::StdRng::seed_from_u64(s),
            None => rand::rngs::StdRng::from_os_rng(),
        };
        let b = contexts.len();
        // Prefill and per-step times, for `KINDRED_LOG=kindred=debug` when tuning speed.
        let t_enc = std::time::Instant::now();
        // Step 1, the strategy: the logits of the first generated token.
        let (first, mut state) = self.model.start(contexts)?;
        let enc_ms = t_enc.elapsed().as_secs_f64() * 1e3;
        let t_dec = std::time::Instant::now();
        let mut steps = 0usize;
        // Time in the logits processors and sampler, apart from the model's forward passes.
        let mut sampling = std::time::Duration::ZERO;
        let dev = self.model.device().clone();

        let logits = first.to_dtype(DType::F32)?.to_vec2::<f32>()?;
        // What the logits processors see: the generated tokens (after the encoder-decoder's
        // `bos`). The decoder-only model's prompt is not among them, so a reply may echo the
        // person's own words, as a reflection of feelings does.
        let mut seqs: Vec<Vec<u32>> = match &self.model {
            Network::BlenderbotSmall(m) => vec![vec![m.config().decoder_start_token_id]; b],
            Network::Llama(_) => vec![Vec::new(); b],
        };
        let mut replies: Vec<Reply> = Vec::with_capacity(b);
        let mut next = Vec::with_capacity(b);
        for (row, logit) in logits.iter().enumerate() {
            let strat_logits: Vec<f32> = self
                .strategy_ids
                .iter()
                .map(|i| logit[*i as usize])
                .collect();
            let probs = softmax(&strat_logits);
            let mut strategy_probs = [0f32; 8];
            strategy_probs.copy_from_slice(&probs);
            let (token, strategy) = match (choices[row], self.lineage) {
                (StrategyChoice::Given(s), _) => (self.strategy_ids[s.index()], Some(s)),
                (
                    choice @ (StrategyChoice::Predict | StrategyChoice::PredictExcept(_)),
                    Lineage::Recipe,
                ) => {
                    let mut strat_logits = strat_logits.clone();
                    if let StrategyChoice::PredictExcept(banned) = choice {
                        for s in banned {
                            strat_logits[s.index()] = f32::NEG_INFINITY;
                        }
                    }
                    let i = match opts.strategy_selection {
                        StrategySelection::Argmax => argmax(&strat_logits),
                        StrategySelection::Sample => pick(
                            &strat_logits,
                            opts.strategy_temperature,
                            0,
                            opts.strategy_top_p,
                            &mut rng,
                        ),
                    };
                    (self.strategy_ids[i], Some(Strategy::ALL[i]))
                }
                (
                    choice @ (StrategyChoice::Predict | StrategyChoice::PredictExcept(_)),
                    Lineage::Paper,
                ) => {
                    // The paper's code: the strategy is whatever the first sampled token is.
                    let mut l = logit.clone();
                    l[eos as usize] = f32::NEG_INFINITY;
                    if let StrategyChoice::PredictExcept(banned) = choice {
                        for s in banned {
                            l[self.strategy_ids[s.index()] as usize] = f32::NEG_INFINITY;
                        }
                    }
                    let t = pick(&l, opts.temperature, opts.top_k, opts.top_p, &mut rng) as u32;
                    (t, self.strategy_of(t))
                }
            };
            seqs[row].push(token);
            next.push(token);
            replies.push(Reply {
                text: String::new(),
                strategy,
                strategy_probs,
                tokens: Vec::new(),
            });
        }

        // Step 2: the reply. The paper lineage's first token may already be a word.
        for (row, r) in replies.iter_mut().enumerate() {
            if r.strategy.is_none() {
                r.tokens
                    .push(*seqs[row].last().expect("the first token was drawn"));
            }
        }
        let mut done = vec![false; b];
        // The conversations still being decoded, in batch order: finished ones leave the
        // batch so later steps only pay for the replies still growing.
        let mut active: Vec<usize> = (0..b).collect();
        loop {
            // Rows at their length limit end without another forward pass.
            for (row, r) in replies.iter().enumerate() {
                if !done[row] && r.tokens.len() >= opts.max_length {
                    done[row] = true;
                }
            }
            if active.iter().any(|r| done[*r]) {
                let keep: Vec<u32> = (0..active.len() as u32)
                    .filter(|i| !done[active[*i as usize]])
                    .collect();
                if keep.is_empty() {
                    break;
                }
                state.select_rows(&Tensor::new(keep.clone(), &dev)?)?;
                next = keep.iter().map(|i| next[*i as usize]).collect();
                active = keep.iter().map(|i| active[*i as usize]).collect();
            }
            let logits = self.model.step(&next, &mut state)?.contiguous()?;
            steps += 1;
            next.clear();
            let t_sampling = std::time::Instant::now();
            // The random numbers first, one per row in row order from the one
            // generator, so that the rows can then be sampled in parallel and a seed
            // still gives the same replies at any thread count. (A row with nothing to
            // draw from, all its tokens banned, takes its number unused.)
            let draws: Vec<f32> = if opts.temperature > 0.0 {
                (0..active.len()).map(|_| rng.random::<f32>()).collect()
            } else {
                vec![0.0; active.len()]
            };
            // Each row's logits processors, candidate set and draw, in parallel, on a
            // copy of the row made by its task in this thread's buffer: read from the
            // logits where the product left them (a copy of all rows by this thread
            // first was 1.8 MB written per token for 8 people, the other thread idle).
            let vocab = logits.dim(1)?;
            let (storage, layout) = logits.storage_and_layout();
            let all = &super::cpu_values(&storage, layout, "decoding runs on the CPU")?
                [..active.len() * vocab];
            let tokens = super::par_map(active.len(), |pos| {
                ROW.with(|buffer| {
                    let mut l = buffer.borrow_mut();
                    l.clear();
                    l.extend_from_slice(&all[pos * vocab..(pos + 1) * vocab]);
                    self.sample_row(
                        &mut l,
                        &seqs[active[pos]],
                        &replies[active[pos]],
                        opts,
                        draws[pos],
                    )
                })
            });
            drop(storage);
            for (pos, t) in tokens.into_iter().enumerate() {
                let row = active[pos];
                let t = t as u32;
                seqs[row].push(t);
                if t == eos {
                    done[row] = true;
                } else {
                    replies[row].tokens.push(t);
                }
                next.push(t);
            }
            sampling += t_sampling.elapsed();
        }
        tracing::debug!(
            batch = b,
            encode_ms = format!("{enc_ms:.1}"),
            steps,
            ms_per_step = format!(
                "{:.1}",
                t_dec.elapsed().as_secs_f64() * 1e3 / steps.max(1) as f64
            ),
            sampling_ms_per_step =
                format!("{:.2}", sampling.as_secs_f64() * 1e3 / steps.max(1) as f64),
            "replies decoded"
        );
        for r in replies.iter_mut() {
            r.text = self.tokenizer.decode(&r.tokens, true);
        }
        Ok(replies)
    }

    /// The next token of a reply: the logits processors applied to `logits` (the row's,
    /// changed in place), then a token drawn at `draw ∈ [0, 1)` of the kept mass.
    fn sample_row(
        &self,
        logits: &mut [f32],
        seq: &[u32],
        reply: &Reply,
        opts: &DecodingOptions,
        draw: f32,
    ) -> usize {
        if opts.repetition_penalty != 1.0 {
            let p = opts.repetition_penalty as f32;
            let mut seen = seq.to_vec();
            seen.sort_unstable();
            seen.dedup();
            for t in seen {
                let v = &mut logits[t as usize];
                *v = if *v < 0.0 { *v * p } else { *v / p };
            }
        }
        for t in banned_ngram_tokens(seq, opts.no_repeat_ngram_size) {
            logits[t as usize] = f32::NEG_INFINITY;
        }
        if reply.tokens.len() < opts.min_length {
            logits[self.model.eos_token_id() as usize] = f32::NEG_INFINITY;
        }
        if self.lineage == Lineage::Recipe {
            for t in self.strategy_ids {
                logits[t as usize] = f32::NEG_INFINITY;
            }
        }
        Candidates::new(logits, opts.temperature, opts.top_k, opts.top_p).draw_at(draw)
    }

    /// Plain greedy decoding of up to `max_new` tokens after the context, stopping at eos
    /// (which is included). No processors: this is what reference parity tests compare.
    pub fn greedy_tokens(&self, context: &[u32], max_new: usize) -> Result<Vec<u32>> {
        let eos = self.model.eos_token_id();
        let (mut logits, mut state) = self.model.start(&[context.to_vec()])?;
        let mut out = Vec::new();
        for _ in 0..max_new {
            let last = argmax(&logits.squeeze(0)?.to_vec1::<f32>()?) as u32;
            out.push(last);
            if last == eos || out.len() == max_new {
                break;
            }
            logits = self.model.step(&[last], &mut state)?;
        }
        Ok(out)
    }

    /// Sum of log-probabilities and token count of `labels` given `context`, teacher-forced;
    /// positions whose label is in `skip` are not counted.
    pub fn log_likelihood(
        &self,
        context: &[u32],
        labels: &[u32],
        skip: &[u32],
    ) -> Result<(f64, usize)> {
        if labels.is_empty() {
            return Ok((0.0, 0));
        }
        let logp = self
            .model
            .label_log_probs(context, labels)?
            .to_vec2::<f32>()?;
        let mut sum = 0.0;
        let mut n = 0;
        for (pos, label) in labels.iter().enumerate() {
            if skip.contains(label) {
                continue;
            }
            sum += logp[pos][*label as usize] as f64;
            n += 1;
        }
        Ok((sum, n))
    }
}
