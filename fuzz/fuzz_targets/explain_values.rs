//! `explain`'s inline values and every other option, as the command line and the page send
//! them: a JSON object of strings decoded into the command's arguments, then explained.
#![no_main]
use convkit_fuzz::explain::{explain_json_inline, ExplainArgs};

#[derive(arbitrary::Arbitrary, Debug)]
struct Args<'a> {
    input: &'a str,
    weight: Option<&'a str>,
    bias: Option<&'a str>,
    input_shape: Option<&'a str>,
    weight_shape: Option<&'a str>,
    stride: Option<&'a str>,
    padding: &'a str,
    padding_mode: &'a str,
    dilation: &'a str,
    groups: &'a str,
    flip: bool,
    pool: Option<&'a str>,
    kernel: Option<&'a str>,
    ceil_mode: bool,
    exclude_pad: bool,
    format: u8,
}

libfuzzer_sys::fuzz_target!(|a: Args<'_>| {
    let args = ExplainArgs {
        input: a.input.into(),
        weight: a.weight.map(Into::into),
        bias: a.bias.map(Into::into),
        input_shape: a.input_shape.map(Into::into),
        weight_shape: a.weight_shape.map(Into::into),
        stride: a.stride.map(Into::into),
        padding: a.padding.into(),
        padding_mode: a.padding_mode.into(),
        dilation: a.dilation.into(),
        groups: a.groups.into(),
        flip: a.flip,
        pool: a.pool.map(Into::into),
        kernel: a.kernel.map(Into::into),
        ceil_mode: a.ceil_mode,
        exclude_pad: a.exclude_pad,
        format: ["text", "markdown", "json"][a.format as usize % 3].into(),
    };
    let _ = explain_json_inline(&args);
});
