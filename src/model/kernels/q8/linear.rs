//! [`Q8Matrix`] as a layer: what a model holds in place of a dense projection once it is
//! quantised (safe code over the kernels in this module).

use super::{Epilogue, Q8Matrix, BLOCK};

/// A q8_0 linear layer (`x · Wᵀ + b`) on [`Q8Matrix`], as a candle [`Module`]: what a
/// model uses in place of a dense layer once quantised. Inputs of any leading shape.
///
/// [`Module`]: candle_core::Module
#[derive(Debug, Clone)]
pub struct Q8Linear {
    weight: std::sync::Arc<Q8Matrix>,
}

impl Q8Linear {
    /// Quantises an `(n, k)` f32 weight (and bias), a few thousand rows at a time so a
    /// large matrix (an output layer) never needs a second f32 copy.
    pub fn quantize(
        weight: &candle_core::Tensor,
        bias: Option<&candle_core::Tensor>,
    ) -> candle_core::Result<Self> {
        let (n, k) = weight.dims2()?;
        if !k.is_multiple_of(BLOCK) {
            candle_core::bail!("q8_0 needs an input size that is a multiple of 32, not {k}");
        }
        let w = weight.to_dtype(candle_core::DType::F32)?;
        let mut q = Q8Matrix::with_capacity(n, k);
        for start in (0..n).step_by(4096) {
            let rows = w
                .narrow(0, start, 4096.min(n - start))?
                .flatten_all()?
                .to_vec1::<f32>()?;
            q.push_rows(&rows);
        }
        let bias = match bias {
            Some(b) => Some(b.to_dtype(candle_core::DType::F32)?.to_vec1::<f32>()?),
            None => None,
        };
        Ok(Self {
            weight: std::sync::Arc::new(q.finish(bias.as_deref())),
        })
    }

    /// The weight as a dense f32 `(n, k)` tensor again.
    pub fn dequantize(&self) -> candle_core::Result<candle_core::Tensor> {
        candle_core::Tensor::from_vec(
            self.weight.dequantize(),
            (self.weight.rows(), self.weight.k),
            &candle_core::Device::Cpu,
        )
    }

    /// The product with `epilogue` applied to the output's parts as they are computed.
    pub fn forward_then(
        &self,
        x: &candle_core::Tensor,
        epilogue: Option<Epilogue>,
    ) -> candle_core::Result<candle_core::Tensor> {
        matmul_tensor(&self.weight, x, epilogue)
    }
}

/// `x · Wᵀ + b` for a tensor `x` of any leading shape, with `epilogue` applied to the
/// output's parts as they are computed.
pub(crate) fn matmul_tensor(
    weight: &Q8Matrix,
    x: &candle_core::Tensor,
    epilogue: Option<Epilogue>,
) -> candle_core::Result<candle_core::Tensor> {
    let x = x.to_dtype(candle_core::DType::F32)?.contiguous()?;
    let mut dims = x.dims().to_vec();
    let k = *dims.last().expect("a projection's input has dimensions");
    let m = x.elem_count() / k;
    let y = {
        let (storage, layout) = x.storage_and_layout();
        let (start, end) = layout.contiguous_offsets().expect("made contiguous above");
        let x = &crate::model::kernels::cpu_values(
            &storage,
            layout,
            "q8_0 projections run on the CPU",
        )?[..end - start];
        match epilogue {
            Some(f) => weight.matmul_then(x, m, f),
            None => weight.matmul(x, m),
        }
    };
    *dims.last_mut().expect("checked above") = weight.rows();
    candle_core::Tensor::from_vec(y, dims, x.device())
}

impl candle_core::Module for Q8Linear {
    fn forward(&self, x: &candle_core::Tensor) -> candle_core::Result<candle_core::Tensor> {
        self.forward_then(x, None)
    }
}
