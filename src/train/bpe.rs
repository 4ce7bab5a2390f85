//! Training a byte-level BPE `tokenizer.json` for models trained from scratch.
//!
//! Byte-level BPE never produces an unknown token (emoji and every script survive a round
//! trip), and lower-casing keeps the vocabulary small for a small model, as BlenderBot-small's
//! own tokenizer did.

use anyhow::{anyhow, Result};
use tokenizers::models::bpe::{BpeTrainerBuilder, BPE};
use tokenizers::models::TrainerWrapper;
use tokenizers::normalizers::{Lowercase, Sequence, NFKC};
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::{AddedToken, NormalizerWrapper};

use crate::model::Strategy;

/// Special tokens in id order: pad 0, bos 1, eos 2, unk 3 (BlenderBot-small's ids and names).
pub const SPECIAL_TOKENS: [&str; 4] = ["__null__", "__start__", "__end__", "__unk__"];

/// Trains a tokenizer on `texts`; the 8 strategy tokens are appended as special tokens.
pub fn train_tokenizer<'a>(
    texts: impl Iterator<Item = &'a str> + Send,
    vocab_size: usize,
) -> Result<tokenizers::Tokenizer> {
    let mut tk = tokenizers::Tokenizer::new(BPE::default());
    tk.with_normalizer(Some(NormalizerWrapper::Sequence(Sequence::new(vec![
        NFKC.into(),
        Lowercase.into(),
    ]))))
    .map_err(|e| anyhow!("setting up the tokenizer failed: {e}"))?;
    tk.with_pre_tokenizer(Some(ByteLevel::default()));
    tk.with_decoder(Some(ByteLevel::default()));
    let mut trainer: TrainerWrapper = BpeTrainerBuilder::new()
        .vocab_size(vocab_size)
        .min_frequency(2)
        .show_progress(false)
        .special_tokens(
            SPECIAL_TOKENS
                .iter()
                .map(|t| AddedToken::from(*t, true))
                .collect(),
        )
        .initial_alphabet(ByteLevel::alphabet().into_iter().collect())
        .build()
        .into();
    tk.train(&mut trainer, texts)
        .map_err(|e| anyhow!("BPE training failed: {e}"))?;
    let strategies: Vec<AddedToken> = Strategy::ALL
        .iter()
        .map(|s| AddedToken::from(s.token(), true))
        .collect();
    tk.add_special_tokens(strategies)
        .map_err(|e| anyhow!("adding the strategy tokens failed: {e}"))?;
    Ok(tk)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trained_tokenizer_round_trips_and_knows_the_strategies() {
        let texts = [
            "I feel so alone lately.",
            "That sounds really hard, I'm sorry.",
            "Have you talked to anyone?",
        ];
        let tk = train_tokenizer(texts.iter().copied().cycle().take(60), 300).unwrap();
        for (i, t) in SPECIAL_TOKENS.iter().enumerate() {
            assert_eq!(tk.token_to_id(t), Some(i as u32));
        }
        let q = tk.token_to_id("[Question]").unwrap();
        let enc = tk.encode("[Question] I feel alone 😢", false).unwrap();
        assert_eq!(enc.get_ids()[0], q);
        let text = tk.decode(&enc.get_ids()[1..], true).unwrap();
        assert_eq!(text.trim(), "i feel alone 😢");
    }
}
