//! Rules of the element-wise layers with parameters: LeakyReLU, ELU, ReLU, Softmax, PReLU,
//! Rescaling.

use seqmodel_grammar::Span;
use seqmodel_ir::{ActivationLayer, MAX_RANK, ParamActivation, PreluAttrs, RescalingAttrs};

use super::catalog::{ArgKind::*, LayerKind, opt, req};
use super::described::{Rule, class1, conflict};
use super::{Args, LayerClass, need_float};
use crate::check::{Elab, ITy, Tensor};
use crate::diagnostic::Diagnostic;
use crate::dims::D;

impl Rule for ActivationLayer {
    const CLASSES: &'static [LayerClass] = &[
        class1(
            "LeakyReLU",
            "leaky_re_lu",
            &[opt("negative_slope", Float), opt("alpha", Float), opt("name", Ignored)],
        ),
        class1("ELU", "elu", &[opt("alpha", Float), opt("name", Ignored)]),
        class1(
            "ReLU",
            "re_lu",
            &[
                opt("max_value", OptFloat),
                opt("negative_slope", Float),
                opt("threshold", Float),
                opt("name", Ignored),
            ],
        ),
        class1("Softmax", "softmax", &[opt("axis", OptInts), opt("name", Ignored)]),
    ];

    fn configure(class: &'static LayerClass, args: &Args, span: Span) -> Result<Self, Diagnostic> {
        let f = |name: &str, default: f64| args.float(name, default) as f32;
        let mut a = ActivationLayer {
            kind: ParamActivation::Relu,
            alpha: 0.0,
            max_value: None,
            threshold: 0.0,
            axis: None,
        };
        match class.name {
            "LeakyReLU" => {
                a.kind = ParamActivation::LeakyRelu;
                a.alpha = args.opt_float("negative_slope").or(args.opt_float("alpha")).unwrap_or(0.3) as f32;
            }
            "ELU" => {
                a.kind = ParamActivation::Elu;
                a.alpha = f("alpha", 1.0);
            }
            "ReLU" => {
                a.alpha = f("negative_slope", 0.0);
                a.threshold = f("threshold", 0.0);
                a.max_value = args.opt_float("max_value").map(|m| m as f32);
                if a.max_value.is_some_and(|m| m < 0.0) || a.alpha < 0.0 {
                    return Err(conflict(
                        args,
                        if a.alpha < 0.0 { "negative_slope" } else { "max_value" },
                        span,
                        "`ReLU` needs `max_value` and `negative_slope` to be at least 0 (as Keras does)"
                            .into(),
                        "negative",
                    ));
                }
            }
            _ => {
                a.kind = ParamActivation::Softmax;
                match args.ints("axis").as_deref() {
                    None | Some([-1]) => {}
                    // The axis as written until the input's rank is known (`infer` normalises it).
                    Some([k]) if *k != 0 => a.axis = Some(*k as usize),
                    Some(_) => {
                        return Err(conflict(
                            args,
                            "axis",
                            span,
                            "`Softmax` normalises over one axis after the batch".into(),
                            "one axis, not the batch",
                        ));
                    }
                }
            }
        }
        Ok(a)
    }

    fn infer(&mut self, cx: &mut Elab<'_>, t: &Tensor, span: Span) -> Option<ITy> {
        let who =
            <Self as Rule>::CLASSES.iter().find(|c| c.name == seqmodel_ir::LayerAttrs::class_name(self));
        if let Some(written) = self.axis {
            let (rank, k) = (t.ty.dims.len() as i64, written as i64);
            let axis = if k < 0 { k + rank } else { k - 1 };
            if !(0..rank).contains(&axis) {
                let msg =
                    format!("`Softmax` axis {k} is out of range for {} (plus the batch)", cx.show(&t.ty));
                cx.emit(Diagnostic::error("SM0310", span, msg).with_label("bad axis"));
                return None;
            }
            // The last axis is the plain softmax.
            self.axis = (axis + 1 < rank).then_some(axis as usize);
        }
        need_float(cx, t, who.map_or("activation", |c| c.name), span).then(|| t.ty.clone())
    }
}

impl Rule for PreluAttrs {
    const CLASSES: &'static [LayerClass] = &[class1(
        "PReLU",
        "p_re_lu",
        &[
            opt("shared_axes", OptInts),
            opt("alpha_initializer", Ignored),
            opt("alpha_regularizer", Ignored),
            opt("alpha_constraint", Ignored),
            opt("name", Ignored),
        ],
    )];

    fn configure(_: &'static LayerClass, args: &Args, span: Span) -> Result<Self, Diagnostic> {
        let mut alpha_shape = [0usize; MAX_RANK];
        for axis in args.ints("shared_axes").unwrap_or_default() {
            if !(1..=MAX_RANK as i64).contains(&axis) {
                return Err(conflict(
                    args,
                    "shared_axes",
                    span,
                    format!(
                        "`PReLU` shared axis {axis} is not an axis 1..={MAX_RANK} (the batch axis 0 is always shared)"
                    ),
                    "no such axis",
                ));
            }
            // Marked shared (size 1) now; the other sizes come from the input.
            alpha_shape[axis as usize - 1] = 1;
        }
        Ok(PreluAttrs { rank: 0, alpha_shape })
    }

    fn infer(&mut self, cx: &mut Elab<'_>, t: &Tensor, span: Span) -> Option<ITy> {
        if !need_float(cx, t, "PReLU", span) {
            return None;
        }
        let rank = t.ty.dims.len();
        if rank > MAX_RANK || self.alpha_shape[rank.min(MAX_RANK)..].contains(&1) {
            let shown = cx.show(&t.ty);
            cx.emit(
                Diagnostic::error(
                    "SM0302",
                    span,
                    format!("`PReLU`'s shared axes do not fit the input {shown}"),
                )
                .with_label(format!("this gets {shown}")),
            );
            return None;
        }
        for i in 0..rank {
            if self.alpha_shape[i] == 1 {
                continue;
            }
            match cx.dims.resolve(t.ty.dims[i]) {
                D::Fixed(n) => self.alpha_shape[i] = n,
                d => {
                    let shown = cx.dims.show(d);
                    cx.emit(
                        Diagnostic::error(
                            "SM0317",
                            span,
                            format!("`PReLU` learns a slope per position, but axis {} is `{shown}`", i + 1),
                        )
                        .with_label("size known only at run time")
                        .with_help(format!("share the slopes along that axis: `shared_axes=[{}]`", i + 1)),
                    );
                    return None;
                }
            }
        }
        self.rank = rank;
        Some(t.ty.clone())
    }
}

impl Rule for RescalingAttrs {
    const CLASSES: &'static [LayerClass] = &[LayerClass {
        name: "Rescaling",
        kind: LayerKind::Described,
        snake: "rescaling",
        args: &[req("scale", Float), opt("offset", Float), opt("name", Ignored)],
        positional: 2,
    }];

    fn configure(_: &'static LayerClass, args: &Args, _: Span) -> Result<Self, Diagnostic> {
        Ok(RescalingAttrs {
            scale: args.float("scale", 1.0) as f32,
            offset: args.float("offset", 0.0) as f32,
        })
    }

    fn infer(&mut self, cx: &mut Elab<'_>, t: &Tensor, span: Span) -> Option<ITy> {
        need_float(cx, t, "Rescaling", span).then(|| t.ty.clone())
    }
}
