//! Reply-quality metrics as the ESConv paper computed them: BLEU-2 (corpus level, as
//! NLTK's `corpus_bleu`), ROUGE-L (nlg-eval / pycocoevalcap: LCS F-measure with β = 1.2,
//! averaged over replies) and Distinct-1/2, all over lower-cased, NLTK (Treebank)
//! tokenised text, in percent.

use std::collections::{HashMap, HashSet};
use std::sync::OnceLock;

use regex::Regex;

struct Rules(Vec<(Regex, &'static str)>);

fn rules() -> &'static (Rules, Rules, Rules) {
    static R: OnceLock<(Rules, Rules, Rules)> = OnceLock::new();
    R.get_or_init(|| {
        let r = |v: Vec<(&str, &'static str)>| {
            Rules(
                v.into_iter()
                    .map(|(p, s)| (Regex::new(p).unwrap(), s))
                    .collect(),
            )
        };
        // NLTK's NLTKWordTokenizer (what `word_tokenize` uses), rule for rule; its
        // look-around rules are done by hand in `tokenize`.
        let starting = r(vec![
            (r#"([«“‘„]|[`]+)"#, " $1 "),
            (r#"^""#, "``"),
            (r"(``)", " $1 "),
            (r#"([ \(\[{<])("|'{2})"#, "$1 `` "),
        ]);
        let punctuation = r(vec![
            (r#"([^\.])(\.)([\]\)}>"'»”’ ]*)\s*$"#, "$1 $2 $3 "),
            (r"([:,])([^\d])", " $1 $2"),
            (r"([:,])$", " $1 "),
            (r"\.{2,}", " $0 "),
            (r"[;@#$%&]", " $0 "),
            (r"[\u{2012}-\u{2015}]", " $0 "),
            (r#"([^\.])(\.)([\]\)}>"']*)\s*$"#, "$1 $2$3 "),
            (r"[?!]", " $0 "),
            (r"([^'])' ", "$1 ' "),
            (r"[*]", " $0 "),
            (r"[\]\[\(\)\{\}<>]", " $0 "),
            (r"--", " -- "),
        ]);
        let ending = r(vec![
            (r#"([»”’])"#, " $1 "),
            (r"''", " '' "),
            (r#"""#, " '' "),
            (r"\s+", " "),
            (r"([^' ])('[sS]|'[mM]|'[dD]|') ", "$1 $2 "),
            (r"([^' ])('ll|'LL|'re|'RE|'ve|'VE|n't|N'T) ", "$1 $2 "),
            (r"(?i)\b(can)(not)\b", " $1 $2 "),
            (r"(?i)\b(d)('ye)\b", " $1 $2 "),
            (r"(?i)\b(gim)(me)\b", " $1 $2 "),
            (r"(?i)\b(gon)(na)\b", " $1 $2 "),
            (r"(?i)\b(got)(ta)\b", " $1 $2 "),
            (r"(?i)\b(lem)(me)\b", " $1 $2 "),
            (r"(?i)\b(more)('n)\b", " $1 $2 "),
            (r"(?i)\b(wan)(na)(\s)", " $1 $2 $3"),
            (r"(?i) ('t)(is)\b", " $1 $2 "),
            (r"(?i) ('t)(was)\b", " $1 $2 "),
        ]);
        (starting, punctuation, ending)
    })
}

/// NLTK's `(?<!\w)(')(?!(?:re|ve|ll|m|t|s|d|n)\b)(?=\w)` → `' `: an opening quote
/// before a word (not a contraction) is split off.
fn split_opening_quotes(t: &str) -> String {
    let chars: Vec<char> = t.chars().collect();
    let mut out = String::with_capacity(t.len() + 8);
    for (i, &c) in chars.iter().enumerate() {
        out.push(c);
        if c != '\'' {
            continue;
        }
        let after_word = i > 0 && (chars[i - 1].is_alphanumeric() || chars[i - 1] == '_');
        let next_word = chars
            .get(i + 1)
            .is_some_and(|n| n.is_alphanumeric() || *n == '_');
        if after_word || !next_word {
            continue;
        }
        let rest: String = chars[i + 1..]
            .iter()
            .take(3)
            .collect::<String>()
            .to_lowercase();
        let is_contraction = ["re", "ve", "ll", "m", "t", "s", "d", "n"].iter().any(|c| {
            rest.starts_with(c)
                && rest[c.len()..]
                    .chars()
                    .next()
                    .is_none_or(|n| !(n.is_alphanumeric() || n == '_'))
        });
        if !is_contraction {
            out.push(' ');
        }
    }
    out
}

/// Lower-cased NLTK (Treebank) tokens of `text`.
pub fn tokenize(text: &str) -> Vec<String> {
    let (starting, punctuation, ending) = rules();
    let mut t = text.to_lowercase();
    for (re, rep) in &starting.0 {
        t = re.replace_all(&t, *rep).into_owned();
    }
    t = split_opening_quotes(&t);
    for (re, rep) in &punctuation.0 {
        t = re.replace_all(&t, *rep).into_owned();
    }
    t = format!(" {t} ");
    for (re, rep) in &ending.0 {
        t = re.replace_all(&t, *rep).into_owned();
    }
    t.split_whitespace().map(str::to_string).collect()
}

fn ngrams(tokens: &[String], n: usize) -> HashMap<&[String], usize> {
    let mut m = HashMap::new();
    if tokens.len() >= n {
        for w in tokens.windows(n) {
            *m.entry(w).or_insert(0) += 1;
        }
    }
    m
}

/// Corpus BLEU with uniform weights up to `max_n` (NLTK `corpus_bleu`, no smoothing), in percent.
pub fn corpus_bleu(hypotheses: &[Vec<String>], references: &[Vec<String>], max_n: usize) -> f64 {
    let mut matched = vec![0usize; max_n];
    let mut total = vec![0usize; max_n];
    let (mut hyp_len, mut ref_len) = (0usize, 0usize);
    for (h, r) in hypotheses.iter().zip(references) {
        hyp_len += h.len();
        ref_len += r.len();
        for n in 1..=max_n {
            let hc = ngrams(h, n);
            let rc = ngrams(r, n);
            for (g, c) in &hc {
                matched[n - 1] += (*c).min(*rc.get(g).unwrap_or(&0));
            }
            total[n - 1] += h.len().saturating_sub(n - 1);
        }
    }
    if matched[0] == 0 || hyp_len == 0 {
        return 0.0;
    }
    let mut log_sum = 0.0;
    for n in 0..max_n {
        if matched[n] == 0 {
            return 0.0;
        }
        log_sum += (matched[n] as f64 / total[n] as f64).ln() / max_n as f64;
    }
    let bp = if hyp_len < ref_len {
        (1.0 - ref_len as f64 / hyp_len as f64).exp()
    } else {
        1.0
    };
    100.0 * bp * log_sum.exp()
}

fn lcs(a: &[String], b: &[String]) -> usize {
    let mut prev = vec![0usize; b.len() + 1];
    for x in a {
        let mut cur = vec![0usize; b.len() + 1];
        for (j, y) in b.iter().enumerate() {
            cur[j + 1] = if x == y {
                prev[j] + 1
            } else {
                prev[j + 1].max(cur[j])
            };
        }
        prev = cur;
    }
    prev[b.len()]
}

/// ROUGE-L as nlg-eval (pycocoevalcap) computes it: per reply the LCS F-measure with
/// β = 1.2, averaged over replies, in percent.
pub fn rouge_l(hypotheses: &[Vec<String>], references: &[Vec<String>]) -> f64 {
    const BETA: f64 = 1.2;
    let mut sum = 0.0;
    for (h, r) in hypotheses.iter().zip(references) {
        let l = lcs(h, r) as f64;
        if l == 0.0 || h.is_empty() || r.is_empty() {
            continue;
        }
        let p = l / h.len() as f64;
        let rec = l / r.len() as f64;
        sum += ((1.0 + BETA * BETA) * p * rec) / (rec + BETA * BETA * p);
    }
    100.0 * sum / hypotheses.len().max(1) as f64
}

/// Distinct-n: distinct n-grams over all n-grams of the hypotheses, in percent.
pub fn distinct(hypotheses: &[Vec<String>], n: usize) -> f64 {
    let mut seen: HashSet<&[String]> = HashSet::new();
    let mut total = 0usize;
    for h in hypotheses {
        if h.len() >= n {
            for w in h.windows(n) {
                seen.insert(w);
                total += 1;
            }
        }
    }
    if total == 0 {
        0.0
    } else {
        100.0 * seen.len() as f64 / total as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(s: &str) -> Vec<String> {
        tokenize(s)
    }

    #[test]
    fn treebank_tokenisation_splits_punctuation_and_contractions() {
        assert_eq!(
            toks("I don't know, really."),
            ["i", "do", "n't", "know", ",", "really", "."]
        );
        assert_eq!(
            toks("It's (maybe) fine?!"),
            ["it", "'s", "(", "maybe", ")", "fine", "?", "!"]
        );
        assert_eq!(toks("I cannot... go"), ["i", "can", "not", "...", "go"]);
    }

    #[test]
    fn known_values() {
        let h = vec![toks("the cat sat on the mat")];
        assert!((corpus_bleu(&h, &h, 2) - 100.0).abs() < 1e-9);
        let r = vec![toks("the cat is on the mat")];
        // p1 = 5/6, p2 = 3/5, no brevity penalty: sqrt(0.5) = 70.71%.
        assert!((corpus_bleu(&h, &r, 2) - 70.710678).abs() < 1e-4);
        // LCS 5, P = R = 5/6 → F = 5/6.
        assert!((rouge_l(&h, &r) - 83.333333).abs() < 1e-4);
        let d = vec![toks("a a b"), toks("a c")];
        assert!((distinct(&d, 1) - 60.0).abs() < 1e-9);
        assert!((distinct(&d, 2) - 100.0).abs() < 1e-9);
        assert_eq!(corpus_bleu(&[toks("x y")], &[toks("a b")], 2), 0.0);
    }
}
