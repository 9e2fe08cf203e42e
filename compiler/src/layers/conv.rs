//! Rules of Conv1D, MaxPooling1D, AveragePooling1D, GlobalMaxPooling1D and
//! GlobalAveragePooling1D.

use seqmodel_grammar::Span;
use seqmodel_ir::{Activation, Conv1dAttrs, GlobalPoolAttrs, Padding, PoolAttrs, PoolKind};

use super::catalog::{ArgKind::*, LayerKind, opt, req};
use super::described::{Rule, conflict, float_features, need_sequence, windowed};
use super::{Args, LayerClass};
use crate::check::{Elab, ITy, Tensor};
use crate::diagnostic::Diagnostic;
use crate::dims::D;

const CHANNELS_LAST: crate::layers::ArgKind = Choice(&["channels_last"]);

fn padding(args: &Args) -> Padding {
    args.str("padding").and_then(Padding::from_name).unwrap_or(Padding::Valid)
}

impl Rule for Conv1dAttrs {
    const CLASSES: &'static [LayerClass] = &[LayerClass {
        name: "Conv1D",
        kind: LayerKind::Described,
        snake: "conv1d",
        args: &[
            req("filters", PosInt),
            req("kernel_size", PosInt),
            opt("strides", PosInt),
            opt("padding", Choice(&["valid", "same", "causal"])),
            opt("data_format", CHANNELS_LAST),
            opt("dilation_rate", PosInt),
            opt("groups", PosInt),
            opt("activation", Activation),
            opt("use_bias", Bool),
            opt("name", Ignored),
        ],
        positional: 2,
    }];

    fn configure(_: &'static LayerClass, args: &Args, span: Span) -> Result<Self, Diagnostic> {
        let a = Conv1dAttrs {
            filters: args.int("filters").unwrap_or(1) as usize,
            kernel_size: args.int("kernel_size").unwrap_or(1) as usize,
            in_channels: 0,
            strides: args.int("strides").unwrap_or(1) as usize,
            dilation_rate: args.int("dilation_rate").unwrap_or(1) as usize,
            groups: args.int("groups").unwrap_or(1) as usize,
            padding: padding(args),
            activation: args.act("activation", Activation::Linear),
            use_bias: args.bool("use_bias", true),
        };
        if a.strides > 1 && a.dilation_rate > 1 {
            return Err(conflict(
                args,
                "dilation_rate",
                span,
                "`Conv1D` cannot combine strides > 1 with dilation_rate > 1 (nor can Keras)".into(),
                "dilated and strided",
            ));
        }
        if !a.filters.is_multiple_of(a.groups) {
            return Err(conflict(
                args,
                "groups",
                span,
                format!(
                    "`Conv1D` splits its {} filters into {} groups, which does not divide",
                    a.filters, a.groups
                ),
                "the filters must be a multiple of the groups",
            ));
        }
        Ok(a)
    }

    fn infer(&mut self, cx: &mut Elab<'_>, t: &Tensor, span: Span) -> Option<ITy> {
        let c = float_features(cx, t, "Conv1D", span)?;
        if !need_sequence(cx, t, "Conv1D", span) {
            return None;
        }
        if !c.is_multiple_of(self.groups) {
            cx.emit(
                Diagnostic::error(
                    "SM0208",
                    span,
                    format!(
                        "`Conv1D` splits its {c} input channels into {} groups, which does not divide",
                        self.groups
                    ),
                )
                .with_label(format!("{c} channels")),
            );
            return None;
        }
        self.in_channels = c;
        let steps = windowed(cx, t, (self.span(), self.strides, self.padding), "Conv1D", span)?;
        Some(ITy { dims: vec![steps, D::Fixed(self.filters)], dtype: t.ty.dtype })
    }
}

const POOL_ARGS: &[crate::layers::ArgSpec] = &[
    opt("pool_size", PosInt),
    opt("strides", PosInt),
    opt("padding", Choice(&["valid", "same"])),
    opt("data_format", CHANNELS_LAST),
    opt("name", Ignored),
];

impl Rule for PoolAttrs {
    const CLASSES: &'static [LayerClass] = &[
        LayerClass {
            name: "MaxPooling1D",
            kind: LayerKind::Described,
            snake: "max_pooling1d",
            args: POOL_ARGS,
            positional: 3,
        },
        LayerClass {
            name: "AveragePooling1D",
            kind: LayerKind::Described,
            snake: "average_pooling1d",
            args: POOL_ARGS,
            positional: 3,
        },
    ];

    fn configure(class: &'static LayerClass, args: &Args, _: Span) -> Result<Self, Diagnostic> {
        let pool_size = args.int("pool_size").unwrap_or(2) as usize;
        Ok(PoolAttrs {
            kind: if class.name == "MaxPooling1D" { PoolKind::Max } else { PoolKind::Average },
            pool_size,
            strides: args.int("strides").map_or(pool_size, |s| s as usize),
            padding: padding(args),
        })
    }

    fn infer(&mut self, cx: &mut Elab<'_>, t: &Tensor, span: Span) -> Option<ITy> {
        let who = if self.kind == PoolKind::Max { "MaxPooling1D" } else { "AveragePooling1D" };
        let c = float_features(cx, t, who, span)?;
        if !need_sequence(cx, t, who, span) {
            return None;
        }
        let steps = windowed(cx, t, (self.pool_size, self.strides, self.padding), who, span)?;
        Some(ITy { dims: vec![steps, D::Fixed(c)], dtype: t.ty.dtype })
    }
}

const GLOBAL_ARGS: &[crate::layers::ArgSpec] =
    &[opt("data_format", CHANNELS_LAST), opt("keepdims", Bool), opt("name", Ignored)];

impl Rule for GlobalPoolAttrs {
    const CLASSES: &'static [LayerClass] = &[
        LayerClass {
            name: "GlobalMaxPooling1D",
            kind: LayerKind::Described,
            snake: "global_max_pooling1d",
            args: GLOBAL_ARGS,
            positional: 1,
        },
        LayerClass {
            name: "GlobalAveragePooling1D",
            kind: LayerKind::Described,
            snake: "global_average_pooling1d",
            args: GLOBAL_ARGS,
            positional: 1,
        },
    ];

    fn configure(class: &'static LayerClass, args: &Args, _: Span) -> Result<Self, Diagnostic> {
        Ok(GlobalPoolAttrs {
            kind: if class.name == "GlobalMaxPooling1D" { PoolKind::Max } else { PoolKind::Average },
            keepdims: args.bool("keepdims", false),
        })
    }

    fn infer(&mut self, cx: &mut Elab<'_>, t: &Tensor, span: Span) -> Option<ITy> {
        let who = if self.kind == PoolKind::Max { "GlobalMaxPooling1D" } else { "GlobalAveragePooling1D" };
        if !need_sequence(cx, t, who, span) {
            return None;
        }
        let c = float_features(cx, t, who, span)?;
        let dims = if self.keepdims { vec![D::Fixed(1), D::Fixed(c)] } else { vec![D::Fixed(c)] };
        Some(ITy { dims, dtype: t.ty.dtype })
    }
}
