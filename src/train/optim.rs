//! AdamW with a warm-up/linear-decay schedule, global-norm clipping, and a state that can
//! be saved and restored exactly (candle's own AdamW keeps its moments private, so a
//! resumed run could not continue the same optimisation).

use std::collections::HashMap;
use std::path::Path;

use anyhow::{Context, Result};
use candle_core::{DType, Tensor, Var};

#[derive(Debug, Clone)]
pub struct AdamWConfig {
    pub lr: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub weight_decay: f64,
    pub warmup_steps: usize,
    pub total_steps: usize,
}

/// Learning rate at optimizer step `step` (1-based): linear warm-up, then linear decay to 0.
pub fn scheduled_lr(cfg: &AdamWConfig, step: usize) -> f64 {
    if cfg.warmup_steps > 0 && step <= cfg.warmup_steps {
        return cfg.lr * step as f64 / cfg.warmup_steps as f64;
    }
    let rest = cfg.total_steps.saturating_sub(cfg.warmup_steps).max(1);
    let done = step.saturating_sub(cfg.warmup_steps);
    cfg.lr * (1.0 - done as f64 / rest as f64).max(0.0)
}

pub struct AdamW {
    pub cfg: AdamWConfig,
    vars: Vec<(String, Var)>,
    m: Vec<Tensor>,
    v: Vec<Tensor>,
    pub step: usize,
}

/// Biases and layer norms are not decayed (as in the reference training code).
fn decays(name: &str) -> bool {
    !(name.ends_with(".bias")
        || name.contains("layer_norm")
        || name.contains("layernorm")
        || name == "final_logits_bias")
}

impl AdamW {
    pub fn new(mut vars: Vec<(String, Var)>, cfg: AdamWConfig) -> Result<Self> {
        vars.sort_by(|a, b| a.0.cmp(&b.0));
        let m = vars
            .iter()
            .map(|(_, v)| v.zeros_like())
            .collect::<candle_core::Result<Vec<_>>>()?;
        let v = vars
            .iter()
            .map(|(_, v)| v.zeros_like())
            .collect::<candle_core::Result<Vec<_>>>()?;
        Ok(Self {
            cfg,
            vars,
            m,
            v,
            step: 0,
        })
    }

    /// Applies one update from `grads` (name → gradient); returns the gradient norm before clipping.
    pub fn step(&mut self, grads: &HashMap<String, Tensor>, clip_norm: f64) -> Result<f64> {
        let mut sq = 0f64;
        for (name, _) in &self.vars {
            if let Some(g) = grads.get(name) {
                sq += g
                    .sqr()?
                    .sum_all()?
                    .to_dtype(DType::F64)?
                    .to_scalar::<f64>()?;
            }
        }
        let norm = sq.sqrt();
        let scale = if clip_norm > 0.0 && norm > clip_norm {
            clip_norm / (norm + 1e-6)
        } else {
            1.0
        };
        self.step += 1;
        let lr = scheduled_lr(&self.cfg, self.step);
        let (b1, b2) = (self.cfg.beta1, self.cfg.beta2);
        let bc1 = 1.0 - b1.powi(self.step as i32);
        let bc2 = 1.0 - b2.powi(self.step as i32);
        for (i, (name, var)) in self.vars.iter().enumerate() {
            let Some(g) = grads.get(name) else { continue };
            let g = (g * scale)?;
            let m = ((&self.m[i] * b1)? + (&g * (1.0 - b1))?)?;
            let v = ((&self.v[i] * b2)? + (g.sqr()? * (1.0 - b2))?)?;
            let update = ((&m / bc1)? / ((&v / bc2)?.sqrt()? + self.cfg.eps)?)?;
            let mut theta = var.as_tensor().clone();
            if decays(name) && self.cfg.weight_decay > 0.0 {
                theta = (&theta * (1.0 - lr * self.cfg.weight_decay))?;
            }
            var.set(&(theta - (update * lr)?)?)?;
            self.m[i] = m;
            self.v[i] = v;
        }
        Ok(norm)
    }

    pub fn current_lr(&self) -> f64 {
        scheduled_lr(&self.cfg, self.step.max(1))
    }

    pub fn save(&self, path: &Path) -> Result<()> {
        let mut map = HashMap::new();
        for (i, (name, _)) in self.vars.iter().enumerate() {
            map.insert(format!("m.{name}"), self.m[i].clone());
            map.insert(format!("v.{name}"), self.v[i].clone());
        }
        map.insert(
            "step".to_string(),
            Tensor::new(&[self.step as u32], &candle_core::Device::Cpu)?,
        );
        candle_core::safetensors::save(&map, path)?;
        Ok(())
    }

    pub fn load(&mut self, path: &Path) -> Result<()> {
        let map = candle_core::safetensors::load(path, &candle_core::Device::Cpu)
            .with_context(|| format!("cannot read optimizer state {}", path.display()))?;
        for (i, (name, _)) in self.vars.iter().enumerate() {
            self.m[i] = map
                .get(&format!("m.{name}"))
                .with_context(|| format!("optimizer state lacks {name}"))?
                .clone();
            self.v[i] = map
                .get(&format!("v.{name}"))
                .with_context(|| format!("optimizer state lacks {name}"))?
                .clone();
        }
        self.step = map
            .get("step")
            .context("optimizer state lacks its step")?
            .to_vec1::<u32>()?[0] as usize;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_warms_up_then_decays_to_zero() {
        let cfg = AdamWConfig {
            lr: 1.0,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
            warmup_steps: 10,
            total_steps: 110,
        };
        assert!((scheduled_lr(&cfg, 5) - 0.5).abs() < 1e-9);
        assert!((scheduled_lr(&cfg, 10) - 1.0).abs() < 1e-9);
        assert!((scheduled_lr(&cfg, 60) - 0.5).abs() < 1e-9);
        assert_eq!(scheduled_lr(&cfg, 110), 0.0);
    }
}
