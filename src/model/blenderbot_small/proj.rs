//! The linear projections of BlenderBot-small: dense, or quantised to q8_0.

use super::*;

/// A linear projection, dense or quantised to q8_0 for faster CPU inference.
///
/// On CPUs with AVX-512 VNNI quantised projections use [`Q8Matrix`] (`q8.rs`), whose
/// tiles make batches cheap. Elsewhere they use candle's q8_0 product, which packs the
/// weights into tiles of 16 output columns (for AVX VNNI or NEON) when `n % 16 == 0`
/// and `k % 256 == 0`; a matrix of another `n` (the output layer: vocabulary sizes are
/// rarely multiples of 16) is padded with zero rows to the next multiple of 16 and its
/// output narrowed back, since without tiles candle reads the whole matrix again for
/// every input row.
#[derive(Debug, Clone)]
pub(super) enum Proj {
    Dense(Linear),
    Q8(Arc<Q8Matrix>),
    Q8Candle {
        weight: candle_core::quantized::QMatMul,
        bias: Option<Tensor>,
        /// Output columns without the padding rows (`bias` has them, as zeros).
        n: usize,
    },
}

impl Proj {
    pub(super) fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        self.forward_then(x, None)
    }

    /// The projection, then `activation`: fused into the product where the product is
    /// Kindred's own q8_0 (and the activation the inference GELU), else applied after.
    pub(super) fn forward_activated(
        &self,
        x: &Tensor,
        activation: Activation,
        mode: Mode,
    ) -> candle_core::Result<Tensor> {
        if let (Proj::Q8(_), Activation::GeluErf, Mode::Inference) = (self, activation, mode) {
            return self.forward_then(x, Some(&activation::gelu_in_place));
        }
        activation.apply(&self.forward(x)?, mode)
    }

    /// The projection, with `epilogue` applied in place to its output's parts as they
    /// are computed (only by the q8_0 product; others ignore it, so callers give one
    /// only for [`Proj::Q8`]).
    pub(super) fn forward_then(
        &self,
        x: &Tensor,
        epilogue: Option<q8::Epilogue>,
    ) -> candle_core::Result<Tensor> {
        match self {
            Proj::Dense(l) => l.forward(x),
            Proj::Q8(weight) => q8::matmul_tensor(weight, x, epilogue),
            Proj::Q8Candle { weight, bias, n } => {
                let mut y = weight.forward(&x.contiguous()?)?;
                // The bias (padded like the weights) goes on while the output is still
                // contiguous: on a narrowed view candle adds element by element.
                if let Some(b) = bias {
                    y = y.broadcast_add(b)?;
                }
                if y.dim(D::Minus1)? != *n {
                    y = y.narrow(D::Minus1, 0, *n)?.contiguous()?;
                }
                Ok(y)
            }
        }
    }

    /// Dense projections of the same input stacked into one: their weights' rows and
    /// biases one after the other, so the output is their outputs side by side.
    pub(super) fn stack(parts: &[&Proj]) -> candle_core::Result<Proj> {
        let mut weights = Vec::with_capacity(parts.len());
        let mut biases = Vec::with_capacity(parts.len());
        for p in parts {
            let Proj::Dense(l) = p else {
                candle_core::bail!("only dense projections can be stacked");
            };
            weights.push(l.weight().clone());
            let n = l.weight().dim(0)?;
            biases.push(match l.bias() {
                Some(b) => b.clone(),
                None => Tensor::zeros(n, l.weight().dtype(), l.weight().device())?,
            });
        }
        Ok(Proj::Dense(Linear::new(
            Tensor::cat(&weights, 0)?,
            Some(Tensor::cat(&biases, 0)?),
        )))
    }

    /// Quantises a dense f32 projection whose input size fits q8_0's 32-value blocks.
    pub(super) fn quantize(&mut self) -> candle_core::Result<()> {
        self.quantize_with(Q8Matrix::available())
    }

    /// As [`Proj::quantize`], with [`Q8Matrix`] or (`false`) candle's product.
    pub(super) fn quantize_with(&mut self, own_kernel: bool) -> candle_core::Result<()> {
        let Proj::Dense(l) = self else {
            return Ok(());
        };
        let w = l.weight();
        let (n, k) = w.dims2()?;
        if k % q8::BLOCK != 0 || w.dtype() != DType::F32 {
            return Ok(());
        }
        // Quantised a few thousand rows at a time: the output layer alone is 110 MB in
        // f32. Each part is a copy of its own: candle 0.11's `QTensor::quantize` reads
        // the source's storage from its beginning, whatever the view's offset.
        let parts = (0..n).step_by(4096).map(|start| {
            w.narrow(0, start, 4096.min(n - start))?
                .flatten_all()?
                .to_vec1::<f32>()
        });
        *self = if own_kernel {
            let mut q = Q8Matrix::with_capacity(n, k);
            for rows in parts {
                q.push_rows(&rows?);
            }
            let bias = match l.bias() {
                Some(b) => Some(b.to_dtype(DType::F32)?.to_vec1::<f32>()?),
                None => None,
            };
            Proj::Q8(Arc::new(q.finish(bias.as_deref())))
        } else {
            use candle_core::quantized::{ggml_file, GgmlDType, QMatMul, QTensor};
            // Padded with zero blocks (34 zero bytes each) to 16 rows.
            let padded = n.next_multiple_of(16);
            let block_bytes = GgmlDType::Q8_0.type_size();
            let mut raw = Vec::with_capacity(padded * k / q8::BLOCK * block_bytes);
            for rows in parts {
                let rows = rows?;
                let count = rows.len() / k;
                let rows = Tensor::from_vec(rows, (count, k), w.device())?;
                raw.extend_from_slice(&QTensor::quantize(&rows, GgmlDType::Q8_0)?.data()?);
            }
            raw.resize(padded * k / q8::BLOCK * block_bytes, 0);
            let q =
                ggml_file::qtensor_from_ggml(GgmlDType::Q8_0, &raw, vec![padded, k], w.device())?;
            let bias = match l.bias() {
                Some(b) if padded > n => Some(Tensor::cat(
                    &[b, &Tensor::zeros(padded - n, b.dtype(), b.device())?],
                    0,
                )?),
                b => b.cloned(),
            };
            Proj::Q8Candle {
                weight: QMatMul::from_qtensor(q)?,
                bias,
                n,
            }
        };
        Ok(())
    }
}

pub(super) fn linear(
    in_dim: usize,
    out_dim: usize,
    vb: VarBuilder,
    std: f64,
) -> candle_core::Result<Proj> {
    let weight = vb.get_with_hints(
        (out_dim, in_dim),
        "weight",
        Init::Randn {
            mean: 0.0,
            stdev: std,
        },
    )?;
    let bias = vb.get_with_hints(out_dim, "bias", Init::Const(0.0))?;
    Ok(Proj::Dense(Linear::new(weight, Some(bias))))
}
