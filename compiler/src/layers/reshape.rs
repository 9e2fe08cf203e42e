//! Rules of Permute, Reshape and Flatten.

use seqmodel_grammar::Span;
use seqmodel_ir::{FlattenAttrs, MAX_RANK, PermuteAttrs, ReshapeAttrs, UpSamplingAttrs};

use super::catalog::{ArgKind::*, LayerKind, opt, req};
use super::described::{Rule, conflict, need_sequence};
use super::{Args, LayerClass};
use crate::check::{Elab, ITy, Tensor};
use crate::diagnostic::Diagnostic;
use crate::dims::D;

/// Every dimension of `t` as a number, or an error saying `who` needs them fixed.
fn fixed_dims(cx: &mut Elab<'_>, t: &Tensor, who: &str, span: Span) -> Option<Vec<usize>> {
    let dims: Vec<D> = t.ty.dims.iter().map(|d| cx.dims.resolve(*d)).collect();
    if let Some(d) = dims.iter().find(|d| !matches!(d, D::Fixed(_))) {
        let (shown, ty) = (cx.dims.show(*d), cx.show(&t.ty));
        cx.emit(
            Diagnostic::error(
                "SM0317",
                span,
                format!("`{who}` needs every dimension fixed, but `{shown}` is known only at run time"),
            )
            .with_label(format!("this gets {ty}"))
            .with_secondary(t.origin.span, format!("{} is {ty}", t.origin.what))
            .with_help("give that dimension as a number"),
        );
        return None;
    }
    Some(dims.iter().map(|d| if let D::Fixed(n) = d { *n } else { 0 }).collect())
}

fn too_many_axes(args: &Args, name: &str, span: Span, who: &str, n: usize) -> Diagnostic {
    conflict(
        args,
        name,
        span,
        format!("`{who}` over {n} axes; seqmodel handles at most {MAX_RANK}"),
        "too many axes",
    )
}

impl Rule for PermuteAttrs {
    const CLASSES: &'static [LayerClass] = &[LayerClass {
        name: "Permute",
        kind: LayerKind::Described,
        snake: "permute",
        args: &[req("dims", Ints), opt("name", Ignored)],
        positional: 1,
    }];

    fn configure(_: &'static LayerClass, args: &Args, span: Span) -> Result<Self, Diagnostic> {
        let dims = args.ints("dims").unwrap_or_default();
        if dims.len() > MAX_RANK {
            return Err(too_many_axes(args, "dims", span, "Permute", dims.len()));
        }
        let mut sorted = dims.clone();
        sorted.sort_unstable();
        if sorted != (1..=dims.len() as i64).collect::<Vec<_>>() {
            return Err(conflict(
                args,
                "dims",
                span,
                format!(
                    "`Permute` dims {dims:?} must name each of the axes 1..={} once (the batch axis 0 never moves)",
                    dims.len()
                ),
                "not a permutation",
            ));
        }
        let mut perm = [0; MAX_RANK];
        for (p, d) in perm.iter_mut().zip(&dims) {
            *p = *d as usize - 1;
        }
        Ok(PermuteAttrs { rank: dims.len(), perm })
    }

    fn infer(&mut self, cx: &mut Elab<'_>, t: &Tensor, span: Span) -> Option<ITy> {
        if t.ty.dims.len() != self.rank {
            let shown = cx.show(&t.ty);
            cx.emit(
                Diagnostic::error(
                    "SM0302",
                    span,
                    format!(
                        "`Permute` reorders {} axes, but the input {shown} has {}",
                        self.rank,
                        t.ty.dims.len()
                    ),
                )
                .with_label(format!("this gets {shown}"))
                .with_secondary(t.origin.span, format!("{} is {shown}", t.origin.what)),
            );
            return None;
        }
        let dims = self.perm[..self.rank].iter().map(|p| t.ty.dims[*p]).collect();
        Some(ITy { dims, dtype: t.ty.dtype })
    }
}

impl Rule for ReshapeAttrs {
    const CLASSES: &'static [LayerClass] = &[LayerClass {
        name: "Reshape",
        kind: LayerKind::Described,
        snake: "reshape",
        args: &[req("target_shape", Ints), opt("name", Ignored)],
        positional: 1,
    }];

    fn configure(_: &'static LayerClass, args: &Args, span: Span) -> Result<Self, Diagnostic> {
        let target = args.ints("target_shape").unwrap_or_default();
        if target.len() > MAX_RANK {
            return Err(too_many_axes(args, "target_shape", span, "Reshape", target.len()));
        }
        if target.iter().filter(|d| **d == -1).count() > 1 || target.iter().any(|d| *d == 0 || *d < -1) {
            return Err(conflict(
                args,
                "target_shape",
                span,
                format!("`Reshape` target {target:?} must hold positive sizes and at most one -1"),
                "invalid target shape",
            ));
        }
        let mut t = [0i64; MAX_RANK];
        t[..target.len()].copy_from_slice(&target);
        Ok(ReshapeAttrs { rank: target.len(), target: t })
    }

    fn infer(&mut self, cx: &mut Elab<'_>, t: &Tensor, span: Span) -> Option<ITy> {
        let dims = fixed_dims(cx, t, "Reshape", span)?;
        let size: usize = dims.iter().product();
        match self.shape_for(size) {
            Some(out) => Some(ITy { dims: out.into_iter().map(D::Fixed).collect(), dtype: t.ty.dtype }),
            None => {
                let shown = cx.show(&t.ty);
                cx.emit(
                    Diagnostic::error(
                        "SM0318",
                        span,
                        format!(
                            "`Reshape` to {:?} cannot hold the {size} values of {shown}",
                            &self.target[..self.rank]
                        ),
                    )
                    .with_label(format!("this gets {shown}"))
                    .with_secondary(t.origin.span, format!("{} is {shown}", t.origin.what)),
                );
                None
            }
        }
    }
}

impl Rule for FlattenAttrs {
    const CLASSES: &'static [LayerClass] = &[LayerClass {
        name: "Flatten",
        kind: LayerKind::Described,
        snake: "flatten",
        args: &[opt("data_format", Choice(&["channels_last"])), opt("name", Ignored)],
        positional: 1,
    }];

    fn configure(_: &'static LayerClass, _: &Args, _: Span) -> Result<Self, Diagnostic> {
        Ok(FlattenAttrs {})
    }

    fn infer(&mut self, cx: &mut Elab<'_>, t: &Tensor, span: Span) -> Option<ITy> {
        let dims = fixed_dims(cx, t, "Flatten", span)?;
        Some(ITy { dims: vec![D::Fixed(dims.iter().product())], dtype: t.ty.dtype })
    }
}

impl Rule for UpSamplingAttrs {
    const CLASSES: &'static [LayerClass] = &[LayerClass {
        name: "UpSampling1D",
        kind: LayerKind::Described,
        snake: "up_sampling1d",
        args: &[opt("size", PosInt), opt("name", Ignored)],
        positional: 1,
    }];

    fn configure(_: &'static LayerClass, args: &Args, _: Span) -> Result<Self, Diagnostic> {
        Ok(UpSamplingAttrs { size: args.int("size").unwrap_or(2) as usize })
    }

    fn infer(&mut self, cx: &mut Elab<'_>, t: &Tensor, span: Span) -> Option<ITy> {
        if !need_sequence(cx, t, "UpSampling1D", span) {
            return None;
        }
        let steps = match cx.dims.resolve(t.ty.dims[0]) {
            D::Fixed(n) => match n.checked_mul(self.size).filter(|n| *n <= super::MAX_SIZE) {
                Some(steps) => D::Fixed(steps),
                None => {
                    cx.emit(super::too_large(span, format!("{n} × {}", self.size)));
                    return None;
                }
            },
            // A length known only at run time: `size·T`, named by its formula.
            len => cx.dims.scaled(len, self.size),
        };
        Some(ITy { dims: vec![steps, t.ty.dims[1]], dtype: t.ty.dtype })
    }
}
