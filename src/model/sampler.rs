//! Sampling one token from a row of logits: temperature, top-k and top-p, computed so
//! that a flat distribution over a 55k vocabulary costs microseconds (buckets by the
//! weights' float bits, draws by chunk sums), and the same bits on every machine.

use super::kernels::sampling::{self, gather_bucket};
use super::kernels::simd::{lane_max, lane_sum};
use rand::Rng;

pub(crate) fn softmax(xs: &[f32]) -> Vec<f32> {
    let max = xs.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
    let exps: Vec<f32> = xs.iter().map(|x| (x - max).exp()).collect();
    let sum: f32 = exps.iter().sum();
    exps.into_iter().map(|e| e / sum).collect()
}

/// Samples from `logits` after temperature, top-k and top-p (greedy if temperature is 0).
pub(crate) fn pick(
    logits: &[f32],
    temperature: f64,
    top_k: usize,
    top_p: f64,
    rng: &mut impl Rng,
) -> usize {
    Candidates::new(logits, temperature, top_k, top_p).draw(rng)
}

/// The tokens a sampler may draw, with their weights: everything about a draw except the
/// random number. Building it is the costly part (a pass over the whole vocabulary), and
/// needs no random numbers, so a batch's rows take theirs from the one generator first,
/// in row order, and then build and draw in parallel: a seed gives the same replies at
/// any thread count.
///
/// Nothing is sorted: top-k is a linear-time selection, top-p a selection by mass
/// ([`mass_threshold`]) among the few tokens heavy enough to matter, and the draw walks
/// the kept tokens in vocabulary order. A sort of the 55k-token vocabulary per generated
/// token (what PyTorch's samplers do) cost more than the whole decoder step when the
/// distribution is flat.
pub(crate) enum Candidates {
    /// Greedy decoding, or nothing to sample from: this token.
    Fixed(usize),
    /// Top-k's tokens that may be drawn, in vocabulary order, with their weights and the
    /// weights' sum.
    Listed {
        tokens: Vec<u32>,
        weights: Vec<f32>,
        mass: f32,
    },
    /// Every token's weight, 0 for those that may not be drawn, and the weights' sum.
    /// Top-p over the whole vocabulary keeps thousands of tokens when the distribution is
    /// flat; gathering them into a list was two more passes, and drawing from the list
    /// one dependent subtraction per kept token.
    Vocabulary { weights: Vec<f32>, mass: f32 },
}

thread_local! {
    /// A vocabulary's worth of weights, for the next [`Candidates`] built on this thread:
    /// a fresh 220 kB buffer per row and token was zeroed (or fresh pages from the
    /// kernel) each time, only to be overwritten.
    static WEIGHTS: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// This thread's spare weights buffer (empty if it has none).
pub(crate) fn scratch_weights() -> Vec<f32> {
    WEIGHTS
        .try_with(|w| std::mem::take(&mut *w.borrow_mut()))
        .unwrap_or_default()
}

/// Keeps `weights` as this thread's spare buffer, if it is larger than the one there.
pub(crate) fn recycle_weights(weights: Vec<f32>) {
    let _ = WEIGHTS.try_with(|w| {
        let mut w = w.borrow_mut();
        if weights.capacity() > w.capacity() {
            *w = weights;
        }
    });
}

impl Drop for Candidates {
    fn drop(&mut self) {
        if let Candidates::Vocabulary { weights, .. } = self {
            recycle_weights(std::mem::take(weights));
        }
    }
}

/// Tokens per chunk of [`draw_from_vocabulary`]: the draw skips a chunk by its sum.
pub(crate) const DRAW_CHUNK: usize = 64;

impl Candidates {
    pub(crate) fn new(logits: &[f32], temperature: f64, top_k: usize, top_p: f64) -> Self {
        super::Simd::run(
            #[inline(always)]
            || Self::new_inline(logits, temperature, top_k, top_p),
        )
    }

    /// The body of [`Candidates::new`], inlined into a function compiled for the widest
    /// vector instructions: its passes over the vocabulary are loops rather than
    /// iterator chains, since a `collect` may be compiled out of line (for the
    /// baseline target) and not vectorise.
    #[inline(always)]
    pub(crate) fn new_inline(logits: &[f32], temperature: f64, top_k: usize, top_p: f64) -> Self {
        let max = lane_max(logits);
        if temperature <= 0.0 || !max.is_finite() {
            return Candidates::Fixed(argmax(logits));
        }
        let inv_t = 1.0 / temperature as f32;
        let n = logits.len();
        let mut weights = scratch_weights();
        sampling::exp_scaled_into(logits, max, inv_t, &mut weights);
        // Exactly the k best with top-k (ties broken arbitrarily, as a sort would).
        if top_k > 0 && top_k < n {
            let mut idx: Vec<usize> = (0..n).collect();
            idx.select_nth_unstable_by(top_k - 1, |a, b| weights[*b].total_cmp(&weights[*a]));
            idx.truncate(top_k);
            idx.sort_unstable();
            let masses: Vec<f32> = idx.iter().map(|i| weights[*i]).collect();
            let threshold = kept_threshold(&masses, top_p);
            recycle_weights(weights);
            let (tokens, weights): (Vec<u32>, Vec<f32>) = idx
                .iter()
                .zip(&masses)
                .filter(|(_, w)| **w >= threshold)
                .map(|(i, w)| (*i as u32, *w))
                .unzip();
            if tokens.is_empty() {
                return Candidates::Fixed(argmax(logits));
            }
            return Candidates::Listed {
                mass: lane_sum(&weights),
                tokens,
                weights,
            };
        }
        let threshold = kept_threshold(&weights, top_p);
        for w in weights.iter_mut() {
            *w = if *w >= threshold { *w } else { 0.0 };
        }
        let mass = lane_sum(&weights);
        if mass <= 0.0 {
            return Candidates::Fixed(argmax(logits));
        }
        Candidates::Vocabulary { weights, mass }
    }

    /// One token, drawn in proportion to its weight.
    pub(crate) fn draw(&self, rng: &mut impl Rng) -> usize {
        match self {
            Candidates::Fixed(token) => *token,
            _ => self.draw_at(rng.random::<f32>()),
        }
    }

    /// The token at `u ∈ [0, 1)` of the kept mass, walking the kept tokens in
    /// vocabulary order: the one where `u · mass` minus the weights before it and its
    /// own reaches 0.
    pub(crate) fn draw_at(&self, u: f32) -> usize {
        match self {
            Candidates::Fixed(token) => *token,
            Candidates::Listed {
                tokens,
                weights,
                mass,
            } => {
                let mut r = u * mass;
                for (token, w) in tokens.iter().zip(weights) {
                    r -= w;
                    if r <= 0.0 {
                        return *token as usize;
                    }
                }
                // Rounding left a sliver of the random number: the last kept token.
                tokens[tokens.len() - 1] as usize
            }
            Candidates::Vocabulary { weights, mass } => super::Simd::run(
                #[inline(always)]
                || draw_from_vocabulary(weights, u * mass),
            ),
        }
    }

    /// The tokens that may be drawn and their weights, in vocabulary order.
    #[cfg(test)]
    pub(crate) fn kept(&self) -> Vec<(u32, f32)> {
        match self {
            Candidates::Fixed(t) => vec![(*t as u32, 1.0)],
            Candidates::Listed {
                tokens, weights, ..
            } => tokens
                .iter()
                .copied()
                .zip(weights.iter().copied())
                .collect(),
            Candidates::Vocabulary { weights, .. } => weights
                .iter()
                .enumerate()
                .filter(|(_, w)| **w > 0.0)
                .map(|(i, w)| (i as u32, *w))
                .collect(),
        }
    }
}

/// The smallest weight kept of `weights` (top-k's, or the whole vocabulary's): top-p's
/// threshold, and never below the smallest positive weight, so that banned tokens
/// (weight 0) are never kept.
#[inline(always)]
pub(crate) fn kept_threshold(weights: &[f32], top_p: f64) -> f32 {
    let mut threshold = f32::MIN_POSITIVE;
    if top_p < 1.0 {
        let total = lane_sum(weights);
        threshold = threshold.max(top_p_threshold(weights, top_p as f32 * total));
    }
    threshold
}

/// The token where `r` minus the weights of those before it and its own reaches 0, for
/// weights of the whole vocabulary (0 where not kept). Whole chunks are skipped by their
/// sum (in a fixed order, so every machine draws the same token); only the chunk where
/// `r` runs out is walked token by token. If rounding leaves a sliver of `r` at the
/// end, the last token with weight.
#[inline(always)]
pub(crate) fn draw_from_vocabulary(weights: &[f32], mut r: f32) -> usize {
    for (c, chunk) in weights.chunks(DRAW_CHUNK).enumerate() {
        let sum = lane_sum(chunk);
        if sum <= 0.0 {
            continue;
        }
        if r <= sum {
            let mut last = None;
            for (i, w) in chunk.iter().enumerate() {
                if *w > 0.0 {
                    r -= w;
                    last = Some(i);
                    if r <= 0.0 {
                        return c * DRAW_CHUNK + i;
                    }
                }
            }
            // The chunk's sum and the walk round differently: its last token.
            return c * DRAW_CHUNK + last.expect("a chunk with mass has a token with weight");
        }
        r -= sum;
    }
    weights
        .iter()
        .rposition(|w| *w > 0.0)
        .unwrap_or(weights.len().saturating_sub(1))
}

/// Where a positive weight's bits are cut for [`top_p_threshold`]'s buckets: the sign
/// bit is 0, so 11 bits (the exponent and 3 bits of mantissa) remain, buckets 9 % wide.
/// Positive floats order as their bits do, so the buckets are in value order.
pub(crate) const BUCKET_SHIFT: u32 = 20;

/// Mantissa bits below a bucket's by which [`refined_threshold`] sorts a bucket's
/// weights again: 256 sub-buckets, each 0.03 % wide.
pub(crate) const FINE_BITS: u32 = 8;

/// The fewest weights in the boundary bucket for which [`refined_threshold`] sums them
/// into sub-buckets first instead of selecting among all of them.
pub(crate) const REFINE_MIN: usize = 256;

/// [`mass_threshold`] for a vocabulary's worth of weights in `[0, 1]`.
///
/// A quickselect over all 55k weights is a few passes of unpredictable branches, and
/// with a flat distribution (an untrained or uncertain model) it was a quarter of a
/// batched decoding step. Instead the weights are first summed into buckets by their
/// float bits (exponent and 3 bits of mantissa: buckets 9 % wide, in value order),
/// which needs no comparisons; the buckets are walked from the heaviest down until the
/// mass reaches `target`, and only the weights of the bucket where that happens go
/// on, to [`refined_threshold`].
pub(crate) fn top_p_threshold(weights: &[f32], target: f32) -> f32 {
    const BUCKETS: usize = 1 << (31 - BUCKET_SHIFT);
    // Four histograms, for weights by position mod 4, added up after: neighbouring
    // weights often share a bucket, and with one histogram each addition would wait for
    // the previous one's store to that bucket.
    let mut parts = vec![0f32; 4 * BUCKETS];
    let chunks = weights.chunks_exact(4);
    for w in chunks.remainder() {
        parts[(w.to_bits() >> BUCKET_SHIFT) as usize] += w;
    }
    for c in chunks {
        for (lane, w) in c.iter().enumerate() {
            parts[lane * BUCKETS + (w.to_bits() >> BUCKET_SHIFT) as usize] += w;
        }
    }
    let mut mass = vec![0f32; BUCKETS];
    for (bucket, m) in mass.iter_mut().enumerate() {
        *m = parts[bucket]
            + parts[BUCKETS + bucket]
            + parts[2 * BUCKETS + bucket]
            + parts[3 * BUCKETS + bucket];
    }
    let Some((boundary, above)) = boundary_bucket(&mass, target) else {
        return 0.0;
    };
    BOUNDARY_WEIGHTS.with(|members| {
        let mut members = members.borrow_mut();
        gather_bucket(weights, boundary as u32, &mut members);
        refined_threshold(&mut members, target - above)
    })
}

thread_local! {
    /// The boundary bucket's weights, gathered for [`refined_threshold`]: room for a
    /// whole vocabulary, kept from one token to the next (a fresh 220 kB buffer per row
    /// and token was fresh pages from the kernel each time, a tenth of the sampler's time).
    static BOUNDARY_WEIGHTS: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// The bucket of `mass` (buckets in value order) where the mass, summed from the
/// heaviest bucket down, reaches `target`, and the mass of those above it; if rounding
/// leaves it short of `target`, the lightest non-empty bucket. `None` if all are empty.
#[inline(always)]
pub(crate) fn boundary_bucket(mass: &[f32], target: f32) -> Option<(usize, f32)> {
    let mut above = 0f32;
    let mut boundary = None;
    for (bucket, m) in mass.iter().enumerate().rev() {
        if *m == 0.0 {
            continue;
        }
        boundary = Some((bucket, above));
        if above + m >= target {
            break;
        }
        above += m;
    }
    boundary
}

/// [`mass_threshold`] for the weights of one bucket: when there are many (a flat
/// distribution puts thousands of tokens in the boundary bucket, and selecting among
/// them was a third of the sampler's time) they are summed into 256 sub-buckets by
/// their next mantissa bits first, and only those of the sub-bucket where the mass
/// reaches `target` are selected among.
pub(crate) fn refined_threshold(members: &mut Vec<f32>, target: f32) -> f32 {
    if members.len() < REFINE_MIN {
        return mass_threshold(members, target);
    }
    let shift = BUCKET_SHIFT - FINE_BITS;
    let fine = |w: f32| ((w.to_bits() >> shift) as usize) & ((1 << FINE_BITS) - 1);
    let mut mass = [0f32; 1 << FINE_BITS];
    for w in members.iter() {
        mass[fine(*w)] += w;
    }
    let Some((boundary, above)) = boundary_bucket(&mass, target) else {
        return 0.0;
    };
    members.retain(|w| fine(*w) == boundary);
    mass_threshold(members, target - above)
}

/// The smallest weight top-p keeps: the tokens weighing more than it hold less than
/// `target` of the mass, those weighing at least as much hold `target` or more. A
/// quickselect that follows the mass instead of a rank: expected linear time.
pub(crate) fn mass_threshold(weights: &mut [f32], target: f32) -> f32 {
    let mut above = 0f32;
    let mut s = weights;
    loop {
        match s.len() {
            0 => return 0.0,
            1 => return s[0],
            _ => {}
        }
        let (a, b, c) = (s[0], s[s.len() / 2], s[s.len() - 1]);
        let pivot = a.max(b).min(a.min(b).max(c));
        // Three-way partition: [> pivot][== pivot][< pivot].
        let (mut gt, mut i, mut lt) = (0, 0, s.len());
        while i < lt {
            if s[i] > pivot {
                s.swap(gt, i);
                gt += 1;
                i += 1;
            } else if s[i] < pivot {
                lt -= 1;
                s.swap(i, lt);
            } else {
                i += 1;
            }
        }
        let heavier: f32 = s[..gt].iter().sum();
        if gt > 0 && above + heavier >= target {
            s = &mut s[..gt];
            continue;
        }
        let equal = pivot * (lt - gt) as f32;
        if above + heavier + equal >= target || lt == s.len() {
            return pivot;
        }
        above += heavier + equal;
        s = &mut s[lt..];
    }
}

pub(crate) fn argmax(xs: &[f32]) -> usize {
    xs.iter()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(b.1))
        .map(|(i, _)| i)
        .unwrap_or(0)
}

/// Tokens that would repeat an n-gram already in `seq` (transformers' `NoRepeatNGram`).
pub(crate) fn banned_ngram_tokens(seq: &[u32], n: usize) -> Vec<u32> {
    if n == 0 || seq.len() + 1 < n {
        return Vec::new();
    }
    let prefix = &seq[seq.len() + 1 - n..];
    seq.windows(n)
        .filter(|w| &w[..n - 1] == prefix)
        .map(|w| w[n - 1])
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::kernels::sampling::gather_bucket_portable;
    use crate::model::kernels::simd::exp_nonpositive;
    use rand::SeedableRng;

    #[test]
    fn no_repeat_ngram_bans_the_completing_token() {
        // seq: a b c a b → "a b c" exists, so after "a b" the token c is banned.
        assert_eq!(banned_ngram_tokens(&[1, 2, 3, 1, 2], 3), vec![3]);
        assert!(banned_ngram_tokens(&[1, 2, 3], 3).is_empty());
        assert!(banned_ngram_tokens(&[1, 2], 0).is_empty());
    }

    #[test]
    fn top_p_keeps_only_the_head_of_the_distribution() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        // One token holds almost all the mass: top-p 0.5 must always pick it.
        let logits = [10.0, 0.0, 0.0, 0.0];
        for _ in 0..50 {
            assert_eq!(pick(&logits, 1.0, 0, 0.5, &mut rng), 0);
        }
        // top-k 2 never picks outside the two best.
        let logits = [1.0, 3.0, 2.0, -1.0];
        for _ in 0..50 {
            let p = pick(&logits, 1.0, 2, 1.0, &mut rng);
            assert!(p == 1 || p == 2);
        }
        assert_eq!(pick(&logits, 0.0, 0, 1.0, &mut rng), 1);
        // A flat distribution over 5000 tokens: top-p 0.9 needs far more than the first
        // candidate window, and must reach tokens beyond it.
        let flat = vec![0.0f32; 5000];
        let picks: Vec<usize> = (0..400)
            .map(|_| pick(&flat, 1.0, 0, 0.9, &mut rng))
            .collect();
        assert!(picks.iter().any(|p| *p > 1000));
        // With top-k 3 on a flat distribution only three tokens are ever chosen.
        let mut seen: Vec<usize> = (0..200)
            .map(|_| pick(&flat, 1.0, 3, 1.0, &mut rng))
            .collect();
        seen.sort();
        seen.dedup();
        assert!(seen.len() <= 3);
        // Banned tokens (-inf) are never picked, whatever the settings.
        let mut banned = vec![0.0f32; 100];
        banned[..90].iter_mut().for_each(|l| *l = f32::NEG_INFINITY);
        for _ in 0..200 {
            assert!(pick(&banned, 1.0, 0, 1.0, &mut rng) >= 90);
            assert!(pick(&banned, 1.0, 95, 0.99, &mut rng) >= 90);
        }
    }

    /// The chunked draw picks the token whose share of the kept mass holds `u`: the
    /// one a walk over the kept tokens one by one picks, but at a boundary between two
    /// tokens (where the two walks round differently), and never a token of weight 0.
    #[test]
    fn a_draw_from_the_vocabulary_lands_where_its_share_of_the_mass_is() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(11);
        for case in 0..40 {
            let n = 1 + case * 97;
            let weights: Vec<f32> = (0..n)
                .map(|i| {
                    // Runs of zeros longer than a chunk, and single kept tokens.
                    if (i / 150) % 3 == 1 || rng.random_range(0..4) == 0 {
                        0.0
                    } else {
                        rng.random_range(0.0f32..1.0)
                    }
                })
                .collect();
            let mass = lane_sum(&weights);
            if mass <= 0.0 {
                continue;
            }
            let candidates = Candidates::Vocabulary {
                weights: weights.clone(),
                mass,
            };
            let prefix: Vec<f64> = weights
                .iter()
                .scan(0f64, |acc, w| {
                    *acc += *w as f64;
                    Some(*acc)
                })
                .collect();
            for step in 0..200 {
                let u = step as f32 / 200.0 + rng.random_range(0.0f32..0.005);
                let t = candidates.draw_at(u);
                assert!(weights[t] > 0.0, "case {case}: drew token {t} of weight 0");
                let target = (u * mass) as f64;
                let (below, upto) = (prefix[t] - weights[t] as f64, prefix[t]);
                let slack = 1e-4 * mass as f64;
                assert!(
                    below - slack <= target && target <= upto + slack,
                    "case {case}, u {u}: token {t} holds {below}..{upto}, target {target}"
                );
            }
            // u = 0: the first kept token; u just below 1: one at the end of the mass.
            let first = weights.iter().position(|w| *w > 0.0).unwrap();
            assert_eq!(candidates.draw_at(0.0), first);
            let t = candidates.draw_at(1.0 - f32::EPSILON);
            assert!(
                prefix[t] >= mass as f64 * (1.0 - 1e-4),
                "case {case}: token {t}"
            );
        }
    }

    /// Selecting top-p bucket by bucket (see `top_p_threshold`) keeps exactly the
    /// tokens a selection over the whole vocabulary keeps.
    #[test]
    fn bucketed_top_p_keeps_what_a_selection_over_all_keeps() {
        // Edges: nothing to select; a target rounding put beyond the total.
        assert_eq!(top_p_threshold(&[0.0; 10], 0.0), 0.0);
        assert_eq!(top_p_threshold(&[0.5, 0.25, 1.0], 1.75 * 1.000_001), 0.25);
        assert_eq!(top_p_threshold(&[0.5, 0.25, 1.0], 1.2), 0.5);
        let mut rng = rand::rngs::StdRng::seed_from_u64(5);
        for case in 0..60 {
            let n = 2000 + case * 37;
            let logits: Vec<f32> = (0..n).map(|_| rng.random_range(-12.0f32..6.0)).collect();
            let top_p = [0.5, 0.9, 0.95, 0.99][case % 4];
            let temperature = [0.5, 0.7, 1.0][case % 3];
            let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let weights: Vec<f32> = logits
                .iter()
                .map(|l| exp_nonpositive((l - max) * (1.0 / temperature as f32)))
                .collect();
            for top_k in [0, 40] {
                let candidates = Candidates::new(&logits, temperature, top_k, top_p);
                assert!(
                    !matches!(candidates, Candidates::Fixed(_)),
                    "sampling expected"
                );
                let kept = candidates.kept();
                // The reference: the selection over every top-k token (or all of them).
                let mut pool: Vec<usize> = (0..n).collect();
                if top_k > 0 {
                    pool.sort_by(|a, b| weights[*b].total_cmp(&weights[*a]));
                    pool.truncate(top_k);
                    pool.sort_unstable();
                }
                let mut masses: Vec<f32> = pool.iter().map(|i| weights[*i]).collect();
                let total = lane_sum(&masses);
                let threshold = mass_threshold(&mut masses, top_p as f32 * total);
                let want: Vec<(u32, f32)> = pool
                    .iter()
                    .filter(|i| weights[**i] >= threshold)
                    .map(|i| (*i as u32, weights[*i]))
                    .collect();
                assert_eq!(kept, want, "case {case}, top_k {top_k}");
            }
        }
    }

    /// A flat distribution (an untrained model's) puts thousands of tokens in the
    /// boundary bucket, which are then summed into sub-buckets: what is kept is still
    /// top-p's set, every token weighing at least a threshold such that those heavier
    /// hold less than the target mass and those at least as heavy hold the target. With
    /// 20–55k weights of similar size, sums in f32 in different orders differ by more
    /// than a weight, so any two selections (a quickselect over all of them included)
    /// may draw the line a token apart: the masses are checked in f64, within f32's
    /// rounding of such a sum (10⁻⁴ of the total).
    #[test]
    fn top_p_over_a_flat_distribution_keeps_the_lightest_set_reaching_the_mass() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(11);
        let mut refined = 0;
        for case in 0..16 {
            let n = 20_000 + case * 2_311;
            let spread = [0.2f32, 0.5, 1.0, 2.0][case % 4];
            let logits: Vec<f32> = (0..n).map(|_| rng.random_range(-spread..spread)).collect();
            let top_p = [0.5, 0.9, 0.95, 0.99][(case / 4) % 4];
            let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let weights: Vec<f32> = logits
                .iter()
                .map(|l| exp_nonpositive((l - max) * (1.0 / 0.7)))
                .collect();
            // Whether this case takes the sub-buckets (most do).
            let target = top_p as f32 * lane_sum(&weights);
            let mut mass = vec![0f32; 1 << (31 - BUCKET_SHIFT)];
            for w in &weights {
                mass[(w.to_bits() >> BUCKET_SHIFT) as usize] += w;
            }
            let (boundary, _) = boundary_bucket(&mass, target).unwrap();
            let members = weights
                .iter()
                .filter(|w| w.to_bits() >> BUCKET_SHIFT == boundary as u32)
                .count();
            refined += (members >= REFINE_MIN) as usize;

            let kept = Candidates::new(&logits, 0.7, 0, top_p).kept();
            let threshold = kept.iter().map(|(_, w)| *w).fold(f32::INFINITY, f32::min);
            let want: Vec<(u32, f32)> = (0..n)
                .filter(|i| weights[*i] >= threshold)
                .map(|i| (i as u32, weights[i]))
                .collect();
            assert_eq!(
                kept, want,
                "case {case}: not every token at the threshold kept"
            );
            let total: f64 = weights.iter().map(|w| *w as f64).sum();
            let (target, tolerance) = (top_p * total, 1e-4 * total);
            let heavier: f64 = weights
                .iter()
                .filter(|w| **w > threshold)
                .map(|w| *w as f64)
                .sum();
            let at_least: f64 = kept.iter().map(|(_, w)| *w as f64).sum();
            assert!(
                heavier < target + tolerance && at_least >= target - tolerance,
                "case {case}: heavier {heavier}, at least as heavy {at_least}, target {target}"
            );
        }
        assert!(refined >= 8, "only {refined} cases were refined");
    }

    /// Both ways of gathering a bucket's weights (AVX-512 where the CPU has it) keep
    /// those of the bucket, in order, whatever is left over after whole vectors.
    #[test]
    fn a_bucket_is_gathered_in_order() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(2);
        for n in [0, 1, 15, 16, 17, 1000, 55_001] {
            let weights: Vec<f32> = (0..n).map(|_| rng.random_range(0.0f32..1.0)).collect();
            for bucket in [1016u32, 1013, 1000, 7] {
                let want: Vec<f32> = weights
                    .iter()
                    .copied()
                    .filter(|w| w.to_bits() >> BUCKET_SHIFT == bucket)
                    .collect();
                let mut got = vec![9.0; 3];
                gather_bucket_portable(&weights, bucket, &mut got);
                assert_eq!(got, want, "portable, {n} weights, bucket {bucket}");
                let mut got = vec![9.0; 3];
                gather_bucket(&weights, bucket, &mut got);
                assert_eq!(got, want, "{n} weights, bucket {bucket}");
            }
        }
    }

    /// The kept set is the one a full sort would keep: the heaviest tokens until their
    /// mass reaches the target.
    #[test]
    fn mass_threshold_matches_a_sort() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        for case in 0..200 {
            let n = 1 + case % 300;
            // Some ties, some spread.
            let w: Vec<f32> = (0..n)
                .map(|_| (rng.random_range(0..20) as f32 * 0.37).exp())
                .collect();
            let total: f32 = w.iter().sum();
            let p = rng.random_range(0.05f32..0.999);
            let mut sorted = w.clone();
            sorted.sort_by(|a, b| b.total_cmp(a));
            let mut cum = 0f32;
            let mut want = sorted[n - 1];
            for v in &sorted {
                cum += v;
                if cum >= p * total {
                    want = *v;
                    break;
                }
            }
            let got = mass_threshold(&mut w.clone(), p * total);
            assert_eq!(got, want, "n={n} p={p}");
        }
    }
}
