//! # convkit
//!
//! Exact N-dimensional convolution for Rust: convolution and cross-correlation over 1-D, 2-D
//! and 3-D (or more) data with batches, channels, groups, stride, dilation, every padding rule
//! and padding mode; transposed convolution; gradients; max/average pooling; and the shape
//! arithmetic CNN designers use (output shapes, parameters, multiply-adds, receptive fields).
//! Semantics follow PyTorch.
//!
//! A caller describes an operation with a plain descriptor ([`ConvDesc`], [`ConvTransposeDesc`],
//! [`PoolDesc`]); it is checked once against the tensor shapes into a problem
//! ([`ConvProblem`]…), which every implementation consumes.
//!
//! ```
//! use convkit::{conv, ConvDesc, Padding};
//! use ndarray::Array4;
//! let x = Array4::<f32>::ones((1, 3, 8, 8));
//! let w = Array4::<f32>::ones((16, 3, 3, 3));
//! let y = conv(x.view(), w.view(), None, &ConvDesc::new().padding(Padding::Same)).unwrap();
//! assert_eq!(y.shape(), &[1, 16, 8, 8]);
//! assert_eq!(y[[0, 0, 4, 4]], 27.0);
//! ```
#![warn(missing_docs)]
#![deny(unsafe_code)]

mod api;
pub mod backward;
pub mod desc;
pub mod error;
pub mod explain;
pub mod filter;
mod geometry;
pub mod impls;
pub mod isa;
pub mod kernels;
pub mod npy;
pub mod plan;
pub mod reference;
pub mod scalar;
pub mod shape;
pub mod stack;
mod tensor;

pub use api::{
    col2im, conv, conv_backward, conv_transpose, im2col, max_pool_with_indices, pool, pool_backward, raw,
    ConvGrads,
};
pub use desc::{parse_list, ConvDesc, ConvTransposeDesc, Layout, PadMode, Padding, PoolDesc, PoolKind};
pub use error::{Error, Result};
pub use isa::Isa;
pub use plan::{ConvPlan, ConvTransposePlan, GradInputPlan, GradWeightPlan, PlanOptions, PoolPlan};
pub use scalar::Scalar;
pub use shape::{
    receptive_field, Axis, ConvProblem, ConvTransposeProblem, LayerAxis, PoolProblem, ReceptiveField,
};
pub use tensor::Tensor;
