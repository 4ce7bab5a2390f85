//! The two architectures behind one Joint model: what decoding asks of a network.
//!
//! Decoding ([`super::JointModel::reply_batch`]) needs four things of a network: read a
//! batch of contexts and give the logits of the first generated token, give the next
//! logits for one more token per row, drop finished rows, and score a reply. The
//! encoder-decoder (BlenderBot-small) reads a context with its encoder and starts its
//! decoder with `bos`; the decoder-only model (Llama) reads the ChatML prompt, whose
//! last tokens (`<|im_start|>assistant\n`) already ask for the reply. Everything else —
//! strategy choice, logits processors, sampling, batching — is shared.

use anyhow::Result;
use candle_core::{DType, Device, Tensor};

use super::blenderbot_small::{BlenderbotSmall, DecoderState};
use super::llama::{Cache, Llama};

/// A Joint model's network.
pub enum Network {
    BlenderbotSmall(BlenderbotSmall),
    Llama(Llama),
}

/// What a network keeps between decoding steps.
pub enum DecodeState {
    BlenderbotSmall(DecoderState),
    Llama(Cache),
}

impl DecodeState {
    /// Keeps only these rows, in this order.
    pub fn select_rows(&mut self, rows: &Tensor) -> Result<()> {
        match self {
            DecodeState::BlenderbotSmall(s) => Ok(s.select_rows(rows)?),
            DecodeState::Llama(c) => c.select_rows(rows),
        }
    }
}

impl Network {
    /// The architecture's name, as HF's `model_type` spells it.
    pub fn architecture(&self) -> &'static str {
        match self {
            Network::BlenderbotSmall(_) => "blenderbot-small",
            Network::Llama(_) => "llama",
        }
    }

    pub fn device(&self) -> &Device {
        match self {
            Network::BlenderbotSmall(m) => m.device(),
            Network::Llama(m) => m.device(),
        }
    }

    /// The token that ends a reply.
    pub fn eos_token_id(&self) -> u32 {
        match self {
            Network::BlenderbotSmall(m) => m.config().eos_token_id,
            Network::Llama(m) => m
                .config()
                .eos_token_id
                .as_ref()
                .and_then(|e| e.first())
                .unwrap_or(0),
        }
    }

    pub fn vocab_size(&self) -> usize {
        match self {
            Network::BlenderbotSmall(m) => m.config().vocab_size,
            Network::Llama(m) => m.config().vocab_size,
        }
    }

    /// Positions the model can read (a context plus, for the decoder-only model, its reply).
    pub fn max_positions(&self) -> usize {
        match self {
            Network::BlenderbotSmall(m) => m.config().max_position_embeddings,
            Network::Llama(m) => m.config().max_position_embeddings,
        }
    }

    pub fn parameter_count(&self) -> usize {
        match self {
            Network::BlenderbotSmall(m) => m.config().parameter_count(),
            Network::Llama(m) => m.config().parameter_count(),
        }
    }

    /// The BlenderBot-small network, for what only it supports (training in candle).
    pub fn as_blenderbot(&self) -> Option<&BlenderbotSmall> {
        match self {
            Network::BlenderbotSmall(m) => Some(m),
            Network::Llama(_) => None,
        }
    }

    /// Reads a batch of contexts; returns the logits of each row's first generated token,
    /// `(batch, vocab)`, and the state to go on from.
    pub fn start(&self, contexts: &[Vec<u32>]) -> Result<(Tensor, DecodeState)> {
        let dev = self.device().clone();
        match self {
            Network::BlenderbotSmall(m) => {
                let cfg = m.config();
                let (ids, mask) = right_padded(contexts, cfg.pad_token_id, cfg.eos_token_id, &dev)?;
                let enc = m.encode(&ids, Some(&mask))?;
                let mut state = m.start_decoding(&enc, Some(&mask))?;
                let bos = Tensor::new(vec![cfg.decoder_start_token_id; contexts.len()], &dev)?;
                let logits = m.decode_step(&bos, &mut state)?;
                Ok((logits, DecodeState::BlenderbotSmall(state)))
            }
            Network::Llama(m) => {
                // Each prompt read on its own (only its own tokens: prompts differ in
                // length, and a padded batch's products ran slower per token than one
                // prompt's), then the caches merged so the replies decode together.
                let mut caches = Vec::with_capacity(contexts.len());
                let mut logits = Vec::with_capacity(contexts.len());
                for c in contexts {
                    anyhow::ensure!(!c.is_empty(), "a decoder-only model needs a prompt");
                    let mut cache = m.new_cache();
                    let ids = Tensor::new(c.as_slice(), &dev)?.unsqueeze(0)?;
                    let real = Tensor::ones((1, c.len()), DType::U32, &dev)?;
                    logits.push(m.forward_last(&ids, &real, &mut cache)?);
                    caches.push(cache);
                }
                let cache = if caches.len() == 1 {
                    caches.pop().expect("one cache")
                } else {
                    Cache::merge(caches)?
                };
                let logits = Tensor::cat(&logits, 0)?.to_dtype(DType::F32)?;
                Ok((logits, DecodeState::Llama(cache)))
            }
        }
    }

    /// The logits `(rows, vocab)` after one more token per row.
    pub fn step(&self, tokens: &[u32], state: &mut DecodeState) -> Result<Tensor> {
        let dev = self.device();
        match (self, state) {
            (Network::BlenderbotSmall(m), DecodeState::BlenderbotSmall(s)) => {
                Ok(m.decode_step(&Tensor::new(tokens, dev)?, s)?)
            }
            (Network::Llama(m), DecodeState::Llama(c)) => {
                let n = tokens.len();
                let ids = Tensor::from_slice(tokens, (n, 1), dev)?;
                let real = Tensor::ones((n, 1), DType::U32, dev)?;
                Ok(m.forward_last(&ids, &real, c)?.to_dtype(DType::F32)?)
            }
            _ => anyhow::bail!("a decoding state was used with another network"),
        }
    }

    /// Log-probabilities `(labels.len(), vocab)` of each label given the context and the
    /// labels before it (teacher forcing).
    pub fn label_log_probs(&self, context: &[u32], labels: &[u32]) -> Result<Tensor> {
        let dev = self.device().clone();
        let prefix = &labels[..labels.len().saturating_sub(1)];
        let logits = match self {
            Network::BlenderbotSmall(m) => {
                let cfg = m.config();
                let (ids, mask) = right_padded(
                    &[context.to_vec()],
                    cfg.pad_token_id,
                    cfg.eos_token_id,
                    &dev,
                )?;
                let mut dec = vec![cfg.decoder_start_token_id];
                dec.extend_from_slice(prefix);
                let dec = Tensor::new(dec, &dev)?.unsqueeze(0)?;
                m.forward(&ids, Some(&mask), &dec)?.squeeze(0)?
            }
            Network::Llama(m) => {
                let mut ids = context.to_vec();
                ids.extend_from_slice(prefix);
                // The prediction of label i is at the position before it.
                m.logits_at(&ids, context.len() - 1, labels.len())?
            }
        };
        Ok(candle_nn::ops::log_softmax(
            &logits.to_dtype(DType::F32)?,
            candle_core::D::Minus1,
        )?)
    }
}

/// Encoder input: contexts padded on the right, with their attention mask. An empty
/// context still needs one position; eos stands for "nothing said yet".
fn right_padded(
    contexts: &[Vec<u32>],
    pad: u32,
    eos: u32,
    dev: &Device,
) -> Result<(Tensor, Tensor)> {
    let len = contexts.iter().map(|c| c.len().max(1)).max().unwrap_or(1);
    let mut ids = Vec::with_capacity(contexts.len() * len);
    let mut mask = Vec::with_capacity(contexts.len() * len);
    for c in contexts {
        let c: &[u32] = if c.is_empty() { &[eos] } else { c };
        for i in 0..len {
            ids.push(*c.get(i).unwrap_or(&pad));
            mask.push(u32::from(i < c.len()));
        }
    }
    Ok((
        Tensor::from_vec(ids, (contexts.len(), len), dev)?,
        Tensor::from_vec(mask, (contexts.len(), len), dev)?,
    ))
}
