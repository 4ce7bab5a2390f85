//! What Kindred knows about published ESConv checkpoints whose hub repositories are not
//! complete model directories.
//!
//! `lsy641/ESC_Blender_Strategy`, the paper's Joint model (Liu et al., ACL 2021), holds only
//! a pickled `pytorch_model.bin`: no `config.json`, no tokenizer, no record of the strategy
//! tokens the authors added. It was fine-tuned from `facebook/blenderbot_small-90M`, so the
//! architecture and the tokenizer come from there, and the added tokens and decoding from
//! the authors' code (thu-coai/Emotional-Support-Conversation, `codes/`).

/// A published checkpoint and how to complete it.
pub struct Published {
    pub repo: &'static str,
    /// The repository its `config.json` and tokenizer come from.
    pub backbone: &'static str,
    pub description: &'static str,
    /// Tokens the authors added to the backbone's vocabulary, with their ids.
    pub added_tokens: &'static [(&'static str, u32)],
    /// The vocabulary of the fine-tuned weights (the backbone's plus the added tokens).
    pub vocab_size: usize,
    /// The decoding the authors evaluated with, as `kindred.json` `decoding` fields.
    pub decoding: &'static [(&'static str, f64)],
    /// Weight names (by suffix) the checkpoint carries and the architecture does not use.
    pub unused_weights: &'static [&'static str],
    pub unused_reason: &'static str,
}

/// Files taken from the backbone repository.
pub const BACKBONE_FILES: [&str; 3] = ["config.json", "vocab.json", "merges.txt"];

pub const PUBLISHED: [Published; 1] = [Published {
    repo: "lsy641/ESC_Blender_Strategy",
    backbone: "facebook/blenderbot_small-90M",
    description: "the Joint model of Liu et al. (ACL 2021), BlenderBot-small fine-tuned on ESConv with strategy tokens",
    added_tokens: &[
        ("[Questions]", 54944),
        ("[Reflection of feelings]", 54945),
        ("[Information]", 54946),
        ("[Restatement or Paraphrasing]", 54947),
        ("[Other]", 54948),
        ("[Self-disclosure]", 54949),
        ("[Affirmation and Reassurance]", 54950),
        ("[Providing Suggestions]", 54951),
        ("[CLS]", 54952),
    ],
    vocab_size: 54953,
    // Sampling as in the authors' evaluation; some copies of the backbone's config carry
    // beam-search defaults (10 beams), which are not what the paper reports.
    decoding: &[
        ("top_k", 30.0),
        ("top_p", 0.9),
        ("temperature", 0.7),
        ("repetition_penalty", 1.03),
        ("min_length", 5.0),
    ],
    unused_weights: &[".wre.weight", ".wte.weight"],
    unused_reason: "the authors' role and turn embeddings, which their released model does not use",
}];

/// The published checkpoint `repo` names, if Kindred knows it (case-insensitively, as the
/// hub resolves names).
pub fn find(repo: &str) -> Option<&'static Published> {
    PUBLISHED.iter().find(|p| p.repo.eq_ignore_ascii_case(repo))
}
