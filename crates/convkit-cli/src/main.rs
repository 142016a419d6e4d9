//! The `convkit` command line: convolution, transposed convolution, gradients and pooling
//! over NumPy `.npy` files. Every user error exits with code 2 and one line on stderr that
//! names the argument and its value; outputs are written beside their target and renamed
//! into place only when every output is complete.

use clap::{Parser, Subcommand};
use convkit::npy::{read_npy, NpyArray, NpyElement};
use convkit::{
    parse_list, raw, ConvDesc, ConvTransposeDesc, Layout, Padding, PoolDesc, PoolKind, Scalar, Tensor,
};
use convkit_cli::{bench, demo, e, explain, filter, output, serve, shape, train_demo, CliResult, ConvArgs};
use output::Outputs;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

const GRAMMAR: &str = "\
Per-axis values (S, D, K, Q): one integer for every spatial axis, or one per axis, comma-separated.
Padding P: one integer; one per axis (symmetric); twice the number of axes (all begins, then all
ends, ONNX `pads` order); or valid | same | same-lower | full. `same` gives ceil(in/stride) outputs
and puts an odd extra pad at the end (same-lower: at the start); `full` pads dilation*(k-1) per side.
The number of spatial axes comes from the input's rank.
Files are NumPy .npy (versions 1-3, little-endian f32 or f64, C order). Outputs have the input's
dtype (other float inputs are converted to it); indices are int64.
Exit status: 0 on success, 2 on any bad input (one line on stderr, nothing written).";

#[derive(Parser)]
#[command(name = "convkit", version, about = "Exact N-d convolution, transposed convolution, gradients and pooling (PyTorch semantics)", after_help = GRAMMAR)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// The main job: edges, blur and feature maps of an embedded image, as PNGs and an index.html
    Demo(demo::DemoArgs),
    /// Filter an image (PNG, JPEG, BMP, TIFF, PNM, .npy) with named or inline kernels, per channel
    #[command(after_help = filter::after_help(), allow_negative_numbers = true)]
    Filter(filter::FilterArgs),
    /// Time convolution plans on benchmark workloads (GFLOP/s, % of the measured FMA peak)
    Bench(bench::BenchArgs),
    /// The SIMD levels this CPU runs, lowest first; plans use the highest unless CONVKIT_MAX_ISA caps it
    Isa,
    /// Layer-stack arithmetic: output shape, parameters, multiply-adds and receptive field per layer
    #[command(after_help = shape::after_help())]
    Shape(shape::ShapeArgs),
    /// A convolution or pooling on a small input, worked step by step like a textbook example
    #[command(after_help = explain::after_help(), allow_negative_numbers = true)]
    Explain(explain::ExplainArgs),
    /// An interactive page on 127.0.0.1: the sliding window, image filters and layer stacks
    Serve(serve::ServeArgs),
    /// Train a small CNN on generated shapes with convkit's own gradients; writes weights and pictures
    #[command(allow_negative_numbers = true)]
    TrainDemo(train_demo::TrainDemoArgs),
    /// Convolution (cross-correlation unless --flip): INPUT (N,C,spatial…) * WEIGHT (K,C/groups,kernel…)
    #[command(after_help = GRAMMAR, allow_negative_numbers = true)]
    Conv {
        /// Input .npy, (N, C, D, H, W) or channels-last with --layout nhwc
        input: PathBuf,
        /// Weight .npy, (K, C/groups, kernel…)
        weight: PathBuf,
        /// Output .npy
        #[arg(short, long)]
        output: PathBuf,
        #[command(flatten)]
        common: ConvArgs,
        /// Values padded with: zeros | reflect | replicate | circular | symmetric | constant:V
        #[arg(long, default_value = "zeros", value_name = "M")]
        padding_mode: String,
    },
    /// Transposed convolution: WEIGHT is (C, K/groups, kernel…)
    #[command(after_help = GRAMMAR, allow_negative_numbers = true)]
    ConvTranspose {
        /// Input .npy
        input: PathBuf,
        /// Weight .npy, (C, K/groups, kernel…)
        weight: PathBuf,
        /// Output .npy
        #[arg(short, long)]
        output: PathBuf,
        #[command(flatten)]
        common: ConvArgs,
        /// Extra output size at the end of each axis (< max(stride, dilation))
        #[arg(long, default_value = "0", value_name = "Q")]
        output_padding: String,
    },
    /// Gradients of a convolution with respect to input, weight and bias
    #[command(after_help = GRAMMAR, allow_negative_numbers = true)]
    ConvBackward {
        /// Input .npy of the forward convolution
        input: PathBuf,
        /// Weight .npy of the forward convolution
        weight: PathBuf,
        /// Gradient of the loss with respect to the convolution's output
        grad_output: PathBuf,
        /// Where to write the gradient with respect to the input
        #[arg(long, value_name = "FILE")]
        grad_input: Option<PathBuf>,
        /// Where to write the gradient with respect to the weight
        #[arg(long, value_name = "FILE")]
        grad_weight: Option<PathBuf>,
        /// Where to write the gradient with respect to the bias
        #[arg(long, value_name = "FILE")]
        grad_bias: Option<PathBuf>,
        #[command(flatten)]
        common: ConvArgs,
        /// Values padded with: zeros | reflect | replicate | circular | symmetric | constant:V
        #[arg(long, default_value = "zeros", value_name = "M")]
        padding_mode: String,
    },
    /// Pooling: max | avg | global-max | global-avg
    #[command(after_help = GRAMMAR, allow_negative_numbers = true)]
    Pool {
        /// max | avg | global-max | global-avg
        kind: String,
        /// Input .npy
        input: PathBuf,
        /// Output .npy
        #[arg(short, long)]
        output: PathBuf,
        /// Window size per axis (required for max and avg, as in PyTorch and ONNX)
        #[arg(long, value_name = "K")]
        kernel: Option<String>,
        /// Step per axis (default: the kernel)
        #[arg(long, value_name = "S")]
        stride: Option<String>,
        /// Padding (grammar below); never a maximum, counted by avg with --count-include-pad true
        #[arg(long, default_value = "0", value_name = "P")]
        padding: String,
        /// Spacing between window taps
        #[arg(long, default_value = "1", value_name = "D")]
        dilation: String,
        /// Round the output size up (PyTorch's rule: a window starting past input + begin pad is dropped)
        #[arg(long)]
        ceil_mode: bool,
        /// avg: divide by taps in input + padding (true) or in the input only (false)
        #[arg(long, default_value = "true", value_name = "true|false")]
        count_include_pad: String,
        /// max: also write the flat index of each maximum within its (n, c) plane (int64 .npy)
        #[arg(long, value_name = "FILE")]
        indices: Option<PathBuf>,
        /// Data layout: nchw (channels first) or nhwc (channels last)
        #[arg(long, default_value = "nchw", value_name = "L")]
        layout: String,
    },
}

/// The element types the command line computes in.
trait Elem: Scalar + NpyElement {
    fn take(a: &NpyArray) -> Tensor<Self>;
}
impl Elem for f32 {
    fn take(a: &NpyArray) -> Tensor<f32> {
        a.to_f32()
    }
}
impl Elem for f64 {
    fn take(a: &NpyArray) -> Tensor<f64> {
        a.to_f64()
    }
}

fn read(arg: &str, path: &Path) -> CliResult<NpyArray> {
    read_npy(arg, path).map_err(e)
}

fn run(cli: Cli) -> CliResult<()> {
    match cli.cmd {
        Cmd::Demo(args) => demo::run(args),
        Cmd::Filter(args) => filter::run(args),
        Cmd::Bench(args) => bench::run(args),
        Cmd::Isa => {
            for &(isa, name, _) in convkit::isa::LEVELS {
                if convkit::isa::supported(isa) {
                    let capped = if isa > convkit::isa::max_isa() { " (above CONVKIT_MAX_ISA)" } else { "" };
                    println!("{name}{capped}");
                }
            }
            Ok(())
        }
        Cmd::Shape(args) => shape::run(args),
        Cmd::Explain(args) => explain::run(args),
        Cmd::Serve(args) => serve::run(args),
        Cmd::TrainDemo(args) => train_demo::run(args),
        Cmd::Conv { input, weight, output, common, padding_mode } => {
            let desc = common.conv_desc(&padding_mode)?;
            let x = read("input", &input)?;
            let w = read("weight", &weight)?;
            let b = common.bias.as_deref().map(|p| read("bias", p)).transpose()?;
            fn go<T: Elem>(
                x: &NpyArray,
                w: &NpyArray,
                b: Option<&NpyArray>,
                d: &ConvDesc,
                out: &Path,
            ) -> CliResult<()> {
                let (x, w, b) = (T::take(x), T::take(w), b.map(T::take));
                check_bias_rank(b.as_ref())?;
                let y = raw::conv(&x.data, &x.shape, &w.data, &w.shape, b.as_ref().map(|b| &b.data[..]), d)
                    .map_err(e)?;
                Outputs::default().add("output", out, y).commit()
            }
            dispatch!(x, go(&x, &w, b.as_ref(), &desc, &output))
        }
        Cmd::ConvTranspose { input, weight, output, common, output_padding } => {
            let d = common.conv_desc("zeros")?;
            let desc = ConvTransposeDesc::new()
                .stride(d.stride)
                .dilation(d.dilation)
                .padding(d.padding)
                .output_padding(parse_list("output-padding", &output_padding).map_err(e)?)
                .groups(d.groups)
                .flip(d.flip)
                .layout(d.layout);
            let x = read("input", &input)?;
            let w = read("weight", &weight)?;
            let b = common.bias.as_deref().map(|p| read("bias", p)).transpose()?;
            fn go<T: Elem>(
                x: &NpyArray,
                w: &NpyArray,
                b: Option<&NpyArray>,
                d: &ConvTransposeDesc,
                out: &Path,
            ) -> CliResult<()> {
                let (x, w, b) = (T::take(x), T::take(w), b.map(T::take));
                check_bias_rank(b.as_ref())?;
                let y = raw::conv_transpose(
                    &x.data,
                    &x.shape,
                    &w.data,
                    &w.shape,
                    b.as_ref().map(|b| &b.data[..]),
                    d,
                )
                .map_err(e)?;
                Outputs::default().add("output", out, y).commit()
            }
            dispatch!(x, go(&x, &w, b.as_ref(), &desc, &output))
        }
        Cmd::ConvBackward {
            input,
            weight,
            grad_output,
            grad_input,
            grad_weight,
            grad_bias,
            common,
            padding_mode,
        } => {
            if common.bias.is_some() {
                return Err(
                    "invalid bias: conv-backward does not take a bias (its gradient is --grad-bias)".into()
                );
            }
            if grad_input.is_none() && grad_weight.is_none() && grad_bias.is_none() {
                return Err(
                    "missing output: give at least one of --grad-input, --grad-weight, --grad-bias".into()
                );
            }
            let desc = common.conv_desc(&padding_mode)?;
            let x = read("input", &input)?;
            let w = read("weight", &weight)?;
            let gy = read("grad_output", &grad_output)?;
            struct Targets {
                gx: Option<PathBuf>,
                gw: Option<PathBuf>,
                gb: Option<PathBuf>,
            }
            fn go<T: Elem>(
                x: &NpyArray,
                w: &NpyArray,
                gy: &NpyArray,
                d: &ConvDesc,
                t: &Targets,
            ) -> CliResult<()> {
                let (x, w, gy) = (T::take(x), T::take(w), T::take(gy));
                let (gx, gw, gb) =
                    raw::conv_backward(&x.data, &x.shape, &w.data, &w.shape, &gy.data, &gy.shape, d)
                        .map_err(e)?;
                let mut out = Outputs::default();
                if let Some(p) = &t.gx {
                    out = out.add("grad-input", p, gx);
                }
                if let Some(p) = &t.gw {
                    out = out.add("grad-weight", p, gw);
                }
                if let Some(p) = &t.gb {
                    out = out.add("grad-bias", p, gb);
                }
                out.commit()
            }
            let t = Targets { gx: grad_input, gw: grad_weight, gb: grad_bias };
            dispatch!(x, go(&x, &w, &gy, &desc, &t))
        }
        Cmd::Pool {
            kind,
            input,
            output,
            kernel,
            stride,
            padding,
            dilation,
            ceil_mode,
            count_include_pad,
            indices,
            layout,
        } => {
            let kind: PoolKind = kind.parse().map_err(e)?;
            let cip = match count_include_pad.trim() {
                "true" | "1" | "yes" => true,
                "false" | "0" | "no" => false,
                other => return Err(format!("invalid count-include-pad {other}: expected true or false")),
            };
            if indices.is_some() && !matches!(kind, PoolKind::Max | PoolKind::GlobalMax) {
                return Err(format!(
                    "invalid indices {}: indices exist for max pooling only, not {kind}",
                    indices.unwrap_or_default().display()
                ));
            }
            // A silent 1x1 window would copy the input and hide a forgotten --kernel.
            let kernel = match (kernel, kind) {
                (Some(k), _) => k,
                (None, PoolKind::GlobalMax | PoolKind::GlobalAvg) => "1".to_string(),
                (None, _) => {
                    return Err(format!("missing kernel: {kind} pooling needs --kernel K (the window size)"))
                }
            };
            let mut desc = PoolDesc::new(kind)
                .kernel(parse_list("kernel", &kernel).map_err(e)?)
                .padding(padding.parse::<Padding>().map_err(e)?)
                .dilation(parse_list("dilation", &dilation).map_err(e)?)
                .ceil_mode(ceil_mode)
                .count_include_pad(cip)
                .layout(layout.parse::<Layout>().map_err(e)?);
            if let Some(s) = stride {
                desc = desc.stride(parse_list("stride", &s).map_err(e)?);
            }
            let x = read("input", &input)?;
            fn go<T: Elem>(x: &NpyArray, d: &PoolDesc, out: &Path, idx: Option<&Path>) -> CliResult<()> {
                let x = T::take(x);
                let (y, i) = raw::pool(&x.data, &x.shape, d).map_err(e)?;
                let mut o = Outputs::default().add("output", out, y);
                if let (Some(p), Some(i)) = (idx, i) {
                    o = o.add("indices", p, i);
                }
                o.commit()
            }
            dispatch!(x, go(&x, &desc, &output, indices.as_deref()))
        }
    }
}

fn check_bias_rank<T>(b: Option<&Tensor<T>>) -> CliResult<()> {
    match b {
        Some(b) if b.shape.len() != 1 => Err(format!(
            "invalid bias shape {:?}: expected a 1-D array, one value per output channel",
            b.shape
        )),
        _ => Ok(()),
    }
}

/// Run a generic body in the dtype of the input array.
macro_rules! dispatch {
    ($x:expr, $f:ident($($a:expr),*)) => {
        match &$x {
            NpyArray::F32(_) => $f::<f32>($($a),*),
            NpyArray::F64(_) => $f::<f64>($($a),*),
        }
    };
}
use dispatch;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(err) => {
            if !err.use_stderr() {
                // --help and --version
                let _ = err.print();
                return ExitCode::SUCCESS;
            }
            if err.kind() == clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
                eprintln!("convkit: missing command: try 'convkit --help'");
                return ExitCode::from(2);
            }
            // One line: clap's message without its usage block.
            let text = err.render().to_string();
            let line: Vec<&str> = text
                .lines()
                .map(str::trim)
                .filter(|l| {
                    !l.is_empty() && !l.starts_with("Usage:") && !l.starts_with("For more information")
                })
                .collect();
            eprintln!("convkit: {}", line.join(" ").trim_start_matches("error: "));
            return ExitCode::from(2);
        }
    };
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(msg) => {
            eprintln!("convkit: {msg}");
            ExitCode::from(2)
        }
    }
}
