//! Tokenisers for Kindred's model directories.
//!
//! Two kinds of directory exist in the wild:
//!
//! * BlenderBot-small's own `vocab.json` + `merges.txt` (the pretrained backbone, the
//!   paper's checkpoints, models fine-tuned from them). No `tokenizer.json` exists for it
//!   and transformers cannot convert it, so [`BlenderbotSmallBpe`] re-implements
//!   transformers' `BlenderbotSmallTokenizer` step for step: whitespace split, punctuation
//!   split, lower-casing, BPE with `</w>` end marks, `@@ ` continuation marks.
//! * a `tokenizer.json` from the `tokenizers` library (models Kindred trains from scratch).
//!
//! Both are wrapped by [`Tokenizer`], which also knows the added tokens (the strategy
//! tokens) of `added_tokens.json`.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;

use anyhow::{bail, Context, Result};

/// transformers' `BlenderbotSmallTokenizer`, byte for byte.
pub struct BlenderbotSmallBpe {
    encoder: HashMap<String, u32>,
    decoder: HashMap<u32, String>,
    ranks: HashMap<(String, String), usize>,
    unk_id: u32,
    cache: Mutex<HashMap<String, Vec<String>>>,
    punct: regex::Regex,
    apostrophe: regex::Regex,
    spaces: regex::Regex,
    words: regex::Regex,
}

impl BlenderbotSmallBpe {
    pub fn from_files(vocab: &Path, merges: &Path) -> Result<Self> {
        let vocab_text = std::fs::read_to_string(vocab)
            .with_context(|| format!("cannot read the vocabulary {}", vocab.display()))?;
        let encoder: HashMap<String, u32> = serde_json::from_str(&vocab_text)
            .with_context(|| format!("{} is not a JSON object of token → id", vocab.display()))?;
        let merges_text = std::fs::read_to_string(merges)
            .with_context(|| format!("cannot read the BPE merges {}", merges.display()))?;
        // transformers: `split("\n")[1:-1]` – the version header and the last (empty) line go.
        let lines: Vec<&str> = merges_text.split('\n').collect();
        let mut ranks = HashMap::new();
        if lines.len() > 2 {
            for (i, line) in lines[1..lines.len() - 1].iter().enumerate() {
                let mut parts = line.split_whitespace();
                if let (Some(a), Some(b)) = (parts.next(), parts.next()) {
                    ranks.insert((a.to_string(), b.to_string()), i);
                }
            }
        }
        let unk_id = *encoder.get("__unk__").context(
            "the vocabulary has no __unk__ token; is this a BlenderBot-small vocab.json?",
        )?;
        let decoder = encoder.iter().map(|(k, v)| (*v, k.clone())).collect();
        Ok(Self {
            encoder,
            decoder,
            ranks,
            unk_id,
            cache: Mutex::new(HashMap::new()),
            punct: regex::Regex::new(r"([.,!?()])").unwrap(),
            apostrophe: regex::Regex::new(r"(')").unwrap(),
            spaces: regex::Regex::new(r"\s{2,}").unwrap(),
            words: regex::Regex::new(r"\S+\n?").unwrap(),
        })
    }

    pub fn vocab_size(&self) -> usize {
        self.encoder.len()
    }

    pub fn token_to_id(&self, token: &str) -> Option<u32> {
        self.encoder.get(token).copied()
    }

    pub fn id_to_token(&self, id: u32) -> Option<&str> {
        self.decoder.get(&id).map(|s| s.as_str())
    }

    fn bpe_word(&self, token: &str) -> Vec<String> {
        let chars: Vec<char> = token.chars().collect();
        let mut word: Vec<String> = chars.iter().map(|c| c.to_string()).collect();
        let last = word.len() - 1;
        word[last].push_str("</w>");
        if word.len() < 2 {
            // No pairs: transformers returns the lower-cased token itself, without `</w>`.
            return vec![token.to_string()];
        }
        loop {
            let best = word
                .windows(2)
                .filter_map(|w| {
                    self.ranks
                        .get(&(w[0].clone(), w[1].clone()))
                        .map(|r| (*r, w))
                })
                .min_by_key(|(r, _)| *r)
                .map(|(_, w)| (w[0].clone(), w[1].clone()));
            let Some((first, second)) = best else { break };
            let mut merged = Vec::with_capacity(word.len());
            let mut i = 0;
            while i < word.len() {
                if word[i] == first && i + 1 < word.len() && word[i + 1] == second {
                    merged.push(format!("{first}{second}"));
                    i += 2;
                } else {
                    merged.push(word[i].clone());
                    i += 1;
                }
            }
            word = merged;
            if word.len() == 1 {
                break;
            }
        }
        // `"@@ ".join(word)[:-4]`: every piece but the last gets `@@`, the last loses `</w>`.
        let n = word.len();
        word.into_iter()
            .enumerate()
            .map(|(i, w)| {
                if i + 1 < n {
                    format!("{w}@@")
                } else {
                    w[..w.len() - 4].to_string()
                }
            })
            .collect()
    }

    fn bpe(&self, token: &str) -> Vec<String> {
        if let Some(hit) = self.cache.lock().unwrap().get(token) {
            return hit.clone();
        }
        let t = self.punct.replace_all(token, " $1");
        let t = self.apostrophe.replace_all(&t, " $1 ");
        let t = self.spaces.replace_all(&t, " ");
        let t = t.replace('\n', " __newln__");
        let mut out = Vec::new();
        for piece in t.split(' ') {
            if piece.is_empty() {
                continue;
            }
            out.extend(self.bpe_word(&piece.to_lowercase()));
        }
        self.cache
            .lock()
            .unwrap()
            .insert(token.to_string(), out.clone());
        out
    }

    /// Token strings of `text` (no added-token handling).
    pub fn tokenize(&self, text: &str) -> Vec<String> {
        self.words
            .find_iter(text)
            .flat_map(|m| self.bpe(m.as_str()))
            .collect()
    }

    pub fn encode(&self, text: &str) -> Vec<u32> {
        self.tokenize(text)
            .iter()
            .map(|t| {
                self.encoder
                    .get(&t.to_lowercase())
                    .copied()
                    .unwrap_or(self.unk_id)
            })
            .collect()
    }

    /// `convert_tokens_to_string`: join with spaces, drop `@@ ` marks, trim.
    pub fn tokens_to_string(&self, tokens: &[&str]) -> String {
        tokens.join(" ").replace("@@ ", "").trim().to_string()
    }
}

/// transformers' `clean_up_tokenization`: re-attaches punctuation and contractions.
pub fn clean_up_tokenization(s: &str) -> String {
    s.replace(" .", ".")
        .replace(" ?", "?")
        .replace(" !", "!")
        .replace(" ,", ",")
        .replace(" ' ", "'")
        .replace(" n't", "n't")
        .replace(" 'm", "'m")
        .replace(" 's", "'s")
        .replace(" 've", "'ve")
        .replace(" 're", "'re")
}

enum Backend {
    BlenderbotSmall(Box<BlenderbotSmallBpe>),
    Json(Box<tokenizers::Tokenizer>),
}

/// A model directory's tokenizer plus its added tokens (`added_tokens.json`).
pub struct Tokenizer {
    backend: Backend,
    /// Added tokens (strategy tokens and the like), longest first for matching.
    added: Vec<(String, u32)>,
    added_ids: HashMap<u32, String>,
    special_ids: Vec<u32>,
    /// Whether decode re-attaches punctuation as transformers' slow tokenizers did.
    clean_up_spaces: bool,
}

impl Tokenizer {
    /// Loads `tokenizer.json` if present, else `vocab.json` + `merges.txt`; then
    /// `added_tokens.json` if present.
    pub fn from_dir(dir: &Path) -> Result<Self> {
        let json = dir.join("tokenizer.json");
        let vocab = dir.join("vocab.json");
        let merges = dir.join("merges.txt");
        let mut added: Vec<(String, u32)> = Vec::new();
        let backend = if json.exists() {
            let tk = tokenizers::Tokenizer::from_file(&json)
                .map_err(|e| anyhow::anyhow!("cannot load {}: {e}", json.display()))?;
            for (id, tok) in tk.get_added_tokens_decoder() {
                added.push((tok.content.clone(), id));
            }
            Backend::Json(Box::new(tk))
        } else if vocab.exists() && merges.exists() {
            Backend::BlenderbotSmall(Box::new(BlenderbotSmallBpe::from_files(&vocab, &merges)?))
        } else {
            bail!(
                "{} has no tokenizer: expected tokenizer.json, or vocab.json and merges.txt",
                dir.display()
            );
        };
        let added_path = dir.join("added_tokens.json");
        if added_path.exists() {
            let text = std::fs::read_to_string(&added_path)
                .with_context(|| format!("cannot read {}", added_path.display()))?;
            let map: HashMap<String, u32> = serde_json::from_str(&text).with_context(|| {
                format!(
                    "{} is not a JSON object of token → id",
                    added_path.display()
                )
            })?;
            for (k, v) in map {
                if !added.iter().any(|(n, _)| n == &k) {
                    added.push((k, v));
                }
            }
        }
        Ok(Self::new(backend, added))
    }

    fn new(backend: Backend, mut added: Vec<(String, u32)>) -> Self {
        added.sort_by(|a, b| b.0.len().cmp(&a.0.len()).then(a.1.cmp(&b.1)));
        let added_ids = added.iter().map(|(n, i)| (*i, n.clone())).collect();
        let mut tk = Self {
            // transformers 5 no longer cleans up tokenisation spaces by default.
            clean_up_spaces: false,
            backend,
            added,
            added_ids,
            special_ids: Vec::new(),
        };
        tk.special_ids = [
            "__null__",
            "__start__",
            "__end__",
            "__unk__",
            "<pad>",
            "<s>",
            "</s>",
            "<unk>",
        ]
        .iter()
        .filter_map(|t| tk.token_to_id(t))
        .collect();
        tk
    }

    /// Whether decoding re-attaches punctuation (`clean_up_tokenization_spaces`).
    pub fn set_clean_up_spaces(&mut self, on: bool) {
        self.clean_up_spaces = on;
    }

    /// Total vocabulary size including added tokens.
    pub fn vocab_size(&self) -> usize {
        let base = match &self.backend {
            Backend::BlenderbotSmall(b) => b.vocab_size(),
            Backend::Json(t) => t.get_vocab_size(false),
        };
        let max_added = self
            .added
            .iter()
            .map(|(_, i)| *i as usize + 1)
            .max()
            .unwrap_or(0);
        base.max(max_added)
    }

    pub fn is_blenderbot_small(&self) -> bool {
        matches!(self.backend, Backend::BlenderbotSmall(_))
    }

    pub fn token_to_id(&self, token: &str) -> Option<u32> {
        if let Some((_, id)) = self.added.iter().find(|(n, _)| n == token) {
            return Some(*id);
        }
        match &self.backend {
            Backend::BlenderbotSmall(b) => b.token_to_id(token),
            Backend::Json(t) => t.token_to_id(token),
        }
    }

    pub fn id_to_token(&self, id: u32) -> Option<String> {
        if let Some(name) = self.added_ids.get(&id) {
            return Some(name.clone());
        }
        match &self.backend {
            Backend::BlenderbotSmall(b) => b.id_to_token(id).map(str::to_string),
            Backend::Json(t) => t.id_to_token(id),
        }
    }

    /// The added tokens as `(text, id)`.
    pub fn added_tokens(&self) -> &[(String, u32)] {
        &self.added
    }

    fn encode_plain(&self, text: &str) -> Result<Vec<u32>> {
        match &self.backend {
            Backend::BlenderbotSmall(b) => Ok(b.encode(text)),
            Backend::Json(t) => Ok(t
                .encode(text, false)
                .map_err(|e| anyhow::anyhow!("tokenisation failed: {e}"))?
                .get_ids()
                .to_vec()),
        }
    }

    /// Token ids of `text`, with added tokens (e.g. `[Question]`) recognised as single ids.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        if let Backend::Json(_) = self.backend {
            // tokenizers already splits on its own added tokens.
            return self.encode_plain(text);
        }
        let mut ids = Vec::new();
        let mut rest = text;
        while !rest.is_empty() {
            let hit = self
                .added
                .iter()
                .filter_map(|(name, id)| rest.find(name.as_str()).map(|pos| (pos, name, *id)))
                .min_by_key(|(pos, name, _)| (*pos, usize::MAX - name.len()));
            match hit {
                Some((pos, name, id)) => {
                    ids.extend(self.encode_plain(&rest[..pos])?);
                    ids.push(id);
                    rest = &rest[pos + name.len()..];
                }
                None => {
                    ids.extend(self.encode_plain(rest)?);
                    break;
                }
            }
        }
        Ok(ids)
    }

    /// Text of `ids`; with `skip_special` the pad/bos/eos/unk and added tokens are left out.
    pub fn decode(&self, ids: &[u32], skip_special: bool) -> String {
        let keep: Vec<u32> = ids
            .iter()
            .copied()
            .filter(|id| {
                !(skip_special
                    && (self.special_ids.contains(id) || self.added_ids.contains_key(id)))
            })
            .collect();
        let text = match &self.backend {
            Backend::BlenderbotSmall(b) => {
                let toks: Vec<String> = keep
                    .iter()
                    .map(|id| {
                        self.added_ids
                            .get(id)
                            .cloned()
                            .or_else(|| b.id_to_token(*id).map(str::to_string))
                            .unwrap_or_else(|| "__unk__".to_string())
                    })
                    .collect();
                let refs: Vec<&str> = toks.iter().map(|s| s.as_str()).collect();
                b.tokens_to_string(&refs)
            }
            Backend::Json(t) => t.decode(&keep, skip_special).unwrap_or_default(),
        };
        if self.clean_up_spaces {
            clean_up_tokenization(&text)
        } else {
            text
        }
    }

    /// The underlying `tokenizers` tokenizer, when the directory has a `tokenizer.json`.
    pub fn as_hf(&self) -> Option<&tokenizers::Tokenizer> {
        match &self.backend {
            Backend::Json(t) => Some(t),
            _ => None,
        }
    }

    /// Wraps a `tokenizers` tokenizer (used when training a new one).
    pub fn from_hf(tk: tokenizers::Tokenizer) -> Self {
        let added = tk
            .get_added_tokens_decoder()
            .into_iter()
            .map(|(id, t)| (t.content, id))
            .collect();
        Self::new(Backend::Json(Box::new(tk)), added)
    }
}

/// llama.cpp's token types (`tokenizer.ggml.token_type`).
const GGUF_TOKEN_CONTROL: i32 = 3;
const GGUF_TOKEN_USER_DEFINED: i32 = 4;

impl Tokenizer {
    /// The BPE tokenizer embedded in a GGUF file, as a `tokenizers` tokenizer: byte-level
    /// BPE from `tokenizer.ggml.tokens` and `tokenizer.ggml.merges`, control tokens
    /// (`<|im_start|>`, …) as special added tokens, user-defined ones as added tokens.
    /// The same conversion transformers makes when it opens a GGUF file, so a model
    /// fine-tuned from one tokenises here exactly as it did in training.
    pub fn from_gguf(content: &candle_core::quantized::gguf_file::Content) -> Result<Self> {
        use tokenizers::models::bpe::BPE;
        use tokenizers::AddedToken;
        let md = &content.metadata;
        let kind = md
            .get("tokenizer.ggml.model")
            .and_then(|v| v.to_string().ok())
            .cloned()
            .unwrap_or_default();
        if kind != "gpt2" {
            bail!(
                "its tokenizer is of the kind {kind:?}; Kindred converts byte-level BPE (\"gpt2\") GGUF tokenizers only"
            );
        }
        let strings = |key: &str| -> Result<Vec<String>> {
            md.get(key)
                .with_context(|| format!("the metadata lacks {key}"))?
                .to_vec()
                .with_context(|| format!("{key} is not a list"))?
                .iter()
                .map(|v| {
                    v.to_string()
                        .cloned()
                        .map_err(|_| anyhow::anyhow!("{key} holds a value that is not a string"))
                })
                .collect()
        };
        let tokens = strings("tokenizer.ggml.tokens")?;
        let merges: Vec<(String, String)> = strings("tokenizer.ggml.merges")?
            .into_iter()
            .map(|m| {
                m.split_once(' ')
                    .map(|(a, b)| (a.to_string(), b.to_string()))
                    .with_context(|| format!("the merge {m:?} is not two tokens"))
            })
            .collect::<Result<_>>()?;
        let types: Vec<i32> = match md.get("tokenizer.ggml.token_type") {
            Some(v) => v
                .to_vec()
                .context("tokenizer.ggml.token_type is not a list")?
                .iter()
                .map(|t| t.to_i32().unwrap_or(1))
                .collect(),
            None => vec![1; tokens.len()],
        };
        let vocab: ahash::AHashMap<String, u32> = tokens
            .iter()
            .enumerate()
            .map(|(i, t)| (t.clone(), i as u32))
            .collect();
        let bpe = BPE::builder()
            .vocab_and_merges(vocab, merges)
            .build()
            .map_err(|e| anyhow::anyhow!("its BPE tokenizer is inconsistent: {e}"))?;
        let mut tk = tokenizers::Tokenizer::new(bpe);
        tk.with_pre_tokenizer(Some(
            tokenizers::pre_tokenizers::byte_level::ByteLevel::new(false, true, true),
        ));
        tk.with_decoder(Some(tokenizers::decoders::byte_level::ByteLevel::default()));
        let special: Vec<AddedToken> = tokens
            .iter()
            .zip(&types)
            .filter(|(_, t)| **t == GGUF_TOKEN_CONTROL)
            .map(|(s, _)| AddedToken::from(s.clone(), true))
            .collect();
        let user: Vec<AddedToken> = tokens
            .iter()
            .zip(&types)
            .filter(|(_, t)| **t == GGUF_TOKEN_USER_DEFINED)
            .map(|(s, _)| AddedToken::from(s.clone(), true))
            .collect();
        tk.add_special_tokens(special)
            .map_err(|e| anyhow::anyhow!("its control tokens cannot be added: {e}"))?;
        tk.add_tokens(user)
            .map_err(|e| anyhow::anyhow!("its user-defined tokens cannot be added: {e}"))?;
        Ok(Self::from_hf(tk))
    }
}
