//! Reading safetensors weights one tensor at a time.
//!
//! Why not candle's memory-mapped reader: it copies every tensor out of the map, and
//! the pages it touched stay resident until the map is dropped, so loading a model
//! briefly costs its size twice (the 90M model peaked near 700 MB). Reading each
//! tensor with a positioned read into its own buffer costs the model once.

use std::collections::HashMap;
use std::fs::File;
use std::io::Read;
use std::os::unix::fs::FileExt;
use std::path::Path;

use anyhow::{bail, Context, Result};
use candle_core::{DType, Device, Shape, Tensor};
use candle_nn::var_builder::SimpleBackend;
use serde::Deserialize;

#[derive(Debug, Deserialize)]
struct Entry {
    dtype: String,
    shape: Vec<usize>,
    data_offsets: (u64, u64),
}

/// A safetensors file whose tensors are read on demand.
pub struct StreamingSafetensors {
    file: File,
    entries: HashMap<String, Entry>,
    data_start: u64,
}

impl StreamingSafetensors {
    pub fn open(path: &Path) -> Result<Self> {
        let mut file = File::open(path)?;
        let mut n = [0u8; 8];
        file.read_exact(&mut n)
            .context("the file is too short for safetensors")?;
        let n = u64::from_le_bytes(n);
        let len = file.metadata()?.len();
        if n > 100_000_000 || 8 + n > len {
            bail!("not a safetensors file (header size {n} for a file of {len} bytes)");
        }
        let mut header = vec![0u8; n as usize];
        file.read_exact(&mut header)?;
        let raw: HashMap<String, serde_json::Value> =
            serde_json::from_slice(&header).context("the safetensors header is not valid JSON")?;
        let mut entries = HashMap::new();
        for (name, v) in raw {
            if name == "__metadata__" {
                continue;
            }
            let e: Entry = serde_json::from_value(v)
                .with_context(|| format!("the safetensors entry {name} is malformed"))?;
            if 8 + n + e.data_offsets.1 > len || e.data_offsets.0 > e.data_offsets.1 {
                bail!("the tensor {name} lies outside the file (is it truncated?)");
            }
            entries.insert(name, e);
        }
        Ok(Self {
            file,
            entries,
            data_start: 8 + n,
        })
    }

    fn read(&self, name: &str, dev: &Device) -> candle_core::Result<Tensor> {
        let e = self.entries.get(name).ok_or_else(|| {
            candle_core::Error::CannotFindTensor {
                path: name.to_string(),
            }
            .bt()
        })?;
        let (start, end) = e.data_offsets;
        let mut buf = vec![0u8; (end - start) as usize];
        self.file
            .read_exact_at(&mut buf, self.data_start + start)
            .map_err(candle_core::Error::wrap)?;
        let dtype = match e.dtype.as_str() {
            "F32" => DType::F32,
            "F16" => DType::F16,
            "BF16" => DType::BF16,
            "F64" => DType::F64,
            "U8" => DType::U8,
            "U32" => DType::U32,
            "I64" => DType::I64,
            other => candle_core::bail!("the tensor {name} has the unsupported dtype {other}"),
        };
        Tensor::from_raw_buffer(&buf, dtype, &e.shape, &Device::Cpu)?.to_device(dev)
    }
}

impl SimpleBackend for StreamingSafetensors {
    fn get(
        &self,
        s: Shape,
        name: &str,
        _: candle_nn::Init,
        dtype: DType,
        dev: &Device,
    ) -> candle_core::Result<Tensor> {
        let t = self.read(name, dev)?.to_dtype(dtype)?;
        if t.shape() != &s {
            Err(candle_core::Error::UnexpectedShape {
                msg: format!("shape mismatch for {name}"),
                expected: s,
                got: t.shape().clone(),
            }
            .bt())?
        }
        Ok(t)
    }

    fn get_unchecked(&self, name: &str, dtype: DType, dev: &Device) -> candle_core::Result<Tensor> {
        self.read(name, dev)?.to_dtype(dtype)
    }

    fn contains_tensor(&self, name: &str) -> bool {
        self.entries.contains_key(name)
    }
}

/// Safetensors weights split over several files, as `model.safetensors.index.json` maps
/// them (how HF stores a model whose files would be too large for a git host).
pub struct ShardedSafetensors {
    shards: Vec<StreamingSafetensors>,
    /// Tensor name → index into `shards`.
    map: HashMap<String, usize>,
}

#[derive(Deserialize)]
struct ShardIndex {
    weight_map: HashMap<String, String>,
}

impl ShardedSafetensors {
    /// Opens the shards an index names; every named shard must exist and hold its tensors.
    pub fn open(index: &Path) -> Result<Self> {
        let dir = index.parent().unwrap_or(Path::new("."));
        let text = std::fs::read_to_string(index)
            .with_context(|| format!("cannot read {}", index.display()))?;
        let idx: ShardIndex = serde_json::from_str(&text)
            .with_context(|| format!("{} is not a safetensors index", index.display()))?;
        let mut files: Vec<String> = idx.weight_map.values().cloned().collect();
        files.sort();
        files.dedup();
        let mut shards = Vec::with_capacity(files.len());
        for f in &files {
            if f.contains('/') || f.contains("..") {
                bail!(
                    "{} names the shard {f:?} outside its directory",
                    index.display()
                );
            }
            let path = dir.join(f);
            shards.push(
                StreamingSafetensors::open(&path)
                    .with_context(|| format!("cannot read the shard {}", path.display()))?,
            );
        }
        let mut map = HashMap::new();
        for (name, f) in idx.weight_map {
            let i = files.binary_search(&f).expect("every file was listed");
            if !shards[i].entries.contains_key(&name) {
                bail!(
                    "{} maps {name} to {f}, which does not hold it",
                    index.display()
                );
            }
            map.insert(name, i);
        }
        Ok(Self { shards, map })
    }

    fn shard(&self, name: &str) -> candle_core::Result<&StreamingSafetensors> {
        self.map.get(name).map(|i| &self.shards[*i]).ok_or_else(|| {
            candle_core::Error::CannotFindTensor {
                path: name.to_string(),
            }
            .bt()
        })
    }
}

impl SimpleBackend for ShardedSafetensors {
    fn get(
        &self,
        s: Shape,
        name: &str,
        init: candle_nn::Init,
        dtype: DType,
        dev: &Device,
    ) -> candle_core::Result<Tensor> {
        self.shard(name)?.get(s, name, init, dtype, dev)
    }

    fn get_unchecked(&self, name: &str, dtype: DType, dev: &Device) -> candle_core::Result<Tensor> {
        self.shard(name)?.get_unchecked(name, dtype, dev)
    }

    fn contains_tensor(&self, name: &str) -> bool {
        self.map.contains_key(name)
    }
}
