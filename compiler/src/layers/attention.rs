//! Rules of Attention, AdditiveAttention and MultiHeadAttention, called on `[query, value]`
//! or `[query, value, key]`.

use seqmodel_grammar::Span;
use seqmodel_ir::{AttentionAttrs, MhaAttrs, ScoreMode};

use super::catalog::{ArgKind::*, LayerKind, opt, req};
use super::described::{Rule, conflict, float_features, need_sequence};
use super::{Args, LayerClass};
use crate::check::{Elab, ITy, Tensor};
use crate::diagnostic::Diagnostic;
use crate::dims::D;

/// Checks `[query, value(, key)]`: each a float sequence with fixed features, the key's steps
/// those of the value. Returns the features of the query, value and key.
fn inputs(cx: &mut Elab<'_>, ts: &[Tensor], who: &str, span: Span) -> Option<(usize, usize, usize)> {
    if !(2..=3).contains(&ts.len()) {
        cx.emit(
            Diagnostic::error(
                "SM0307",
                span,
                format!("`{who}` takes [query, value] or [query, value, key], {} given", ts.len()),
            )
            .with_label("wrong number of inputs")
            .with_help(format!(
                "call it on a list: `{who}(...)([query, value])`, or `([x, x])` for self-attention"
            )),
        );
        return None;
    }
    let mut features = Vec::new();
    for t in ts {
        if !need_sequence(cx, t, who, span) {
            return None;
        }
        features.push(float_features(cx, t, who, span)?);
    }
    let key = ts.get(2).unwrap_or(&ts[1]);
    if ts.len() == 3 && cx.dims.unify(ts[1].ty.dims[0], key.ty.dims[0]).is_err() {
        let (v, k) = (cx.show(&ts[1].ty), cx.show(&key.ty));
        cx.emit(
            Diagnostic::error(
                "SM0319",
                span,
                format!("`{who}`'s key {k} and value {v} have different steps"),
            )
            .with_label("key and value do not line up")
            .with_secondary(ts[1].origin.span, format!("the value is {v}"))
            .with_secondary(key.origin.span, format!("the key is {k}")),
        );
        return None;
    }
    Some((features[0], features[1], *features.get(2).unwrap_or(&features[1])))
}

impl Rule for AttentionAttrs {
    const CLASSES: &'static [LayerClass] = &[
        LayerClass {
            name: "Attention",
            kind: LayerKind::Described,
            snake: "attention",
            args: &[
                opt("use_scale", Bool),
                opt("score_mode", Choice(&["dot", "concat"])),
                opt("dropout", Rate),
                opt("use_causal_mask", Bool),
                opt("return_attention_scores", Bool),
                opt("seed", Ignored),
                opt("name", Ignored),
            ],
            positional: 1,
        },
        LayerClass {
            name: "AdditiveAttention",
            kind: LayerKind::Described,
            snake: "additive_attention",
            args: &[
                opt("use_scale", Bool),
                opt("dropout", Rate),
                opt("use_causal_mask", Bool),
                opt("return_attention_scores", Bool),
                opt("seed", Ignored),
                opt("name", Ignored),
            ],
            positional: 1,
        },
    ];

    fn configure(class: &'static LayerClass, args: &Args, _: Span) -> Result<Self, Diagnostic> {
        let additive = class.name == "AdditiveAttention";
        let score_mode = match args.str("score_mode") {
            _ if additive => ScoreMode::Additive,
            Some("concat") => ScoreMode::Concat,
            _ => ScoreMode::Dot,
        };
        Ok(AttentionAttrs {
            score_mode,
            use_scale: args.bool("use_scale", additive),
            use_causal_mask: args.bool("use_causal_mask", false),
            dropout: args.float("dropout", 0.0) as f32,
            dim: 0,
            return_scores: args.bool("return_attention_scores", false),
        })
    }

    fn infer(&mut self, cx: &mut Elab<'_>, t: &Tensor, span: Span) -> Option<ITy> {
        self.infer_many(cx, std::slice::from_ref(t), span)
    }

    fn infer_many(&mut self, cx: &mut Elab<'_>, ts: &[Tensor], span: Span) -> Option<ITy> {
        let who = seqmodel_ir::LayerAttrs::class_name(self);
        let (q, v, k) = inputs(cx, ts, who, span)?;
        if q != k {
            let (qs, ks) = (cx.show(&ts[0].ty), cx.show(&ts.get(2).unwrap_or(&ts[1]).ty));
            cx.emit(
                Diagnostic::error(
                    "SM0319",
                    span,
                    format!("`{who}` scores the query {qs} against the key {ks}: their features differ"),
                )
                .with_label(format!("{q} against {k} features"))
                .with_help("project them to one size first, e.g. with `Dense`"),
            );
            return None;
        }
        self.dim = q;
        Some(ITy { dims: vec![ts[0].ty.dims[0], D::Fixed(v)], dtype: ts[0].ty.dtype })
    }

    fn more_outputs(&self, ts: &[Tensor]) -> Vec<ITy> {
        scores_output(self.return_scores, None, ts)
    }
}

/// With `return_attention_scores`, the attention weights' type: `[Tq, Tv]`, or per head
/// `[heads, Tq, Tv]`.
fn scores_output(on: bool, heads: Option<usize>, ts: &[Tensor]) -> Vec<ITy> {
    let (Some(q), Some(v), true) = (ts.first(), ts.get(1), on) else { return Vec::new() };
    let steps = [q.ty.dims[0], v.ty.dims[0]];
    let dims = heads.map(D::Fixed).into_iter().chain(steps).collect();
    vec![ITy { dims, dtype: q.ty.dtype }]
}

impl Rule for MhaAttrs {
    const CLASSES: &'static [LayerClass] = &[LayerClass {
        name: "MultiHeadAttention",
        kind: LayerKind::Described,
        snake: "multi_head_attention",
        args: &[
            req("num_heads", PosInt),
            req("key_dim", PosInt),
            opt("value_dim", PosInt),
            opt("dropout", Rate),
            opt("use_bias", Bool),
            opt("output_shape", OptInts),
            opt("attention_axes", OptInts),
            opt("use_causal_mask", Bool),
            opt("return_attention_scores", Bool),
            opt("use_gate", Bool),
            opt("seed", Ignored),
            opt("name", Ignored),
        ],
        positional: 2,
    }];

    fn configure(class: &'static LayerClass, args: &Args, span: Span) -> Result<Self, Diagnostic> {
        if !matches!(args.ints("attention_axes").as_deref(), None | Some([1]) | Some([-2])) {
            return Err(conflict(
                args,
                "attention_axes",
                span,
                "`MultiHeadAttention` attends over the time axis only (attention_axes=[1])".into(),
                "not supported",
            ));
        }
        if args.bool("use_gate", false) {
            return Err(conflict(
                args,
                "use_gate",
                span,
                format!("`{}` with `use_gate=true` is not supported", class.name),
                "not supported",
            ));
        }
        let output_dim = match args.ints("output_shape").as_deref() {
            None => 0,
            Some([n]) if *n > 0 => *n as usize,
            Some(other) => {
                return Err(conflict(
                    args,
                    "output_shape",
                    span,
                    format!(
                        "`MultiHeadAttention` output_shape {other:?}: only one positive size is supported"
                    ),
                    "not supported",
                ));
            }
        };
        let key_dim = args.int("key_dim").unwrap_or(1) as usize;
        Ok(MhaAttrs {
            num_heads: args.int("num_heads").unwrap_or(1) as usize,
            key_dim,
            value_dim: args.int("value_dim").map_or(key_dim, |v| v as usize),
            use_bias: args.bool("use_bias", true),
            output_dim,
            use_causal_mask: args.bool("use_causal_mask", false),
            dropout: args.float("dropout", 0.0) as f32,
            query_features: 0,
            value_features: 0,
            key_features: 0,
            return_scores: args.bool("return_attention_scores", false),
        })
    }

    fn infer(&mut self, cx: &mut Elab<'_>, t: &Tensor, span: Span) -> Option<ITy> {
        self.infer_many(cx, std::slice::from_ref(t), span)
    }

    fn infer_many(&mut self, cx: &mut Elab<'_>, ts: &[Tensor], span: Span) -> Option<ITy> {
        let (q, v, k) = inputs(cx, ts, "MultiHeadAttention", span)?;
        (self.query_features, self.value_features, self.key_features) = (q, v, k);
        if self.output_dim == 0 {
            self.output_dim = q;
        }
        Some(ITy { dims: vec![ts[0].ty.dims[0], D::Fixed(self.output_dim)], dtype: ts[0].ty.dtype })
    }

    fn more_outputs(&self, ts: &[Tensor]) -> Vec<ITy> {
        scores_output(self.return_scores, Some(self.num_heads), ts)
    }
}
