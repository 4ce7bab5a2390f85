//! Every hand-written CPU kernel of the models, and the only place in Kindred where
//! `unsafe` code is allowed (`#![deny(unsafe_code)]` holds everywhere else).
//!
//! Why they exist: candle's CPU backend runs a decoding step as many small operations,
//! each its own pass over memory and its own hand-off to the thread pool. For a model
//! as small as ours that bookkeeping is most of the time, so the hot paths are written
//! here as fused loops over the tensors' memory, with AVX-512 / AVX2 paths chosen at
//! run time ([`Simd`]) and a portable path they are tested against:
//!
//! * [`q8`]: q8_0 matrix products (AVX-512 VNNI and AMX) and the packed weights;
//! * [`attention`]: attention for decoding steps and the encoder, and the quantised
//!   key/value cache;
//! * [`norm`]: the fused residual add + layer norm;
//! * [`activation`]: a vectorised exact GELU;
//! * [`sampling`]: the sampler's exponentials and its bucket gather;
//! * this file: sharing work out on candle's own thread pool.
//!
//! Each `unsafe` block says, in a `SAFETY:` comment, why it holds (clippy's
//! `undocumented_unsafe_blocks` lint checks that one is there). Everything above this
//! module (the networks, decoding, the sampler's logic) is safe Rust.
#![allow(unsafe_code)]
#![warn(clippy::undocumented_unsafe_blocks)]

pub(crate) mod activation;
pub(crate) mod attention;
pub(crate) mod norm;
pub mod q8;
pub(crate) mod sampling;
pub(crate) mod simd;

pub(crate) use simd::Simd;

/// The f32 values of a CPU tensor's storage from where its `layout` starts: what the
/// model's own kernels read in place of candle's operations. `not_cpu` is the error on
/// any other device.
pub(crate) fn cpu_values<'a>(
    storage: &'a candle_core::Storage,
    layout: &candle_core::Layout,
    not_cpu: &str,
) -> candle_core::Result<&'a [f32]> {
    let candle_core::Storage::Cpu(cpu) = storage else {
        candle_core::bail!("{not_cpu}");
    };
    Ok(&cpu.as_slice::<f32>()?[layout.start_offset()..])
}

/// `f(0), …, f(n - 1)` computed on candle's thread pool (the one the model's own
/// operations use, so no second pool competes with it for the cores).
pub(crate) fn par_map<T: Send>(n: usize, f: impl Fn(usize) -> T + Sync) -> Vec<T> {
    let slots: Vec<std::sync::Mutex<Option<T>>> =
        (0..n).map(|_| std::sync::Mutex::new(None)).collect();
    candle_core::utils::barrier_pool().execute_chunked(n, |range| {
        for i in range {
            let value = f(i);
            *slots[i].lock().unwrap_or_else(|e| e.into_inner()) = Some(value);
        }
    });
    slots
        .into_iter()
        .map(|s| {
            s.into_inner()
                .unwrap_or_else(|e| e.into_inner())
                .expect("every index is computed")
        })
        .collect()
}

/// `f(i, part)` for each of the `n` consecutive parts of `out`, `out.len() / n` values
/// each, on candle's thread pool: for kernels whose work items each fill their own part
/// of one output (no per-item allocation or hand-back, unlike [`par_map`]).
pub(crate) fn par_parts(out: &mut [f32], n: usize, f: impl Fn(usize, &mut [f32]) + Sync) {
    if n == 0 {
        return;
    }
    let len = out.len() / n;
    let ptr = out.as_mut_ptr() as usize;
    candle_core::utils::barrier_pool().execute_chunked(n, |range| {
        for i in range {
            // SAFETY: part `i` is `out[i·len .. (i + 1)·len]`, inside `out`, and only
            // item `i` writes it while `out` is borrowed here.
            let part =
                unsafe { std::slice::from_raw_parts_mut((ptr as *mut f32).add(i * len), len) };
            f(i, part);
        }
    });
}
