//! The typed abstract syntax tree of a `.seq` file. Every node carries its byte [`Span`].

use crate::Span;

/// A name in the source, with where it was written.
#[derive(Debug, Clone, PartialEq)]
pub struct Ident {
    /// The name as written.
    pub name: String,
    /// Where it was written.
    pub span: Span,
}

/// A whole `.seq` file: a list of model definitions.
#[derive(Debug, Clone, PartialEq)]
pub struct File {
    /// The models, in source order.
    pub models: Vec<ModelDef>,
}

/// One `///` line of a model's doc comment.
#[derive(Debug, Clone, PartialEq)]
pub struct DocLine {
    /// The text after the `///`.
    pub text: String,
    /// Where the line is in the source (the formatter keeps the plain comments between doc
    /// lines where they were).
    pub span: Span,
}

/// `model Name<D, ...>(inputs) -> outputs where settings { body }`.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelDef {
    /// The `///` doc comment lines before the model.
    pub docs: Vec<DocLine>,
    /// The model's name.
    pub name: Ident,
    /// Dimension parameters (`Decoder<T>`), bound by the caller.
    pub dim_params: Vec<Ident>,
    /// The typed inputs.
    pub params: Vec<Param>,
    /// The declared output types, if any (several for a tuple).
    pub outputs: Option<Vec<TensorType>>,
    /// `where batch = 4` and similar settings.
    pub settings: Vec<Setting>,
    /// The statements of the body; the last expression statement is the output.
    pub body: Vec<Stmt>,
    /// The whole definition.
    pub span: Span,
}

/// One typed model input, `x: [T, 8]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Param {
    /// The input's name.
    pub name: Ident,
    /// Its declared type (batch dimension implicit).
    pub ty: TensorType,
}

/// A `where` setting, `batch = 4`.
#[derive(Debug, Clone, PartialEq)]
pub struct Setting {
    /// The setting's name.
    pub name: Ident,
    /// Its value.
    pub value: usize,
    /// Where the value was written.
    pub value_span: Span,
}

/// Element type of a tensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DTypeAst {
    /// 32-bit float (the default).
    F32,
    /// 32-bit integer (token ids).
    I32,
    /// Boolean (a mask).
    Bool,
}

/// A tensor type without the batch dimension, `[T, 8] of f32`.
#[derive(Debug, Clone, PartialEq)]
pub struct TensorType {
    /// The dimensions, outermost first.
    pub dims: Vec<DimAst>,
    /// The element type, if written.
    pub dtype: Option<(DTypeAst, Span)>,
    /// The whole type.
    pub span: Span,
}

/// One dimension as written: a number or a symbol.
#[derive(Debug, Clone, PartialEq)]
pub enum DimAst {
    /// A fixed size.
    Fixed(usize, Span),
    /// A symbolic size such as `T`, or `T+3` / `T-2` with an offset.
    Sym(Ident, i64),
}

impl DimAst {
    /// Where the dimension was written.
    pub fn span(&self) -> Span {
        match self {
            DimAst::Fixed(_, s) => *s,
            DimAst::Sym(i, _) => i.span,
        }
    }
}

/// A statement in a model body.
#[derive(Debug, Clone, PartialEq)]
pub enum Stmt {
    /// `a = expr` or `out, h, c = expr`.
    Assign {
        /// The names bound.
        targets: Vec<Ident>,
        /// The value.
        value: Expr,
        /// The whole statement.
        span: Span,
    },
    /// A bare expression; the last one is the model's output.
    Expr(Expr),
}

impl Stmt {
    /// The expression the statement evaluates (the right-hand side of an assignment).
    pub fn value(&self) -> &Expr {
        match self {
            Stmt::Assign { value, .. } | Stmt::Expr(value) => value,
        }
    }

    /// [`Stmt::value`], mutably.
    pub fn value_mut(&mut self) -> &mut Expr {
        match self {
            Stmt::Assign { value, .. } | Stmt::Expr(value) => value,
        }
    }
}

/// An expression with its span.
#[derive(Debug, Clone, PartialEq)]
pub struct Expr {
    /// What kind of expression.
    pub kind: ExprKind,
    /// The whole expression.
    pub span: Span,
}

/// The kinds of expression.
#[derive(Debug, Clone, PartialEq)]
pub enum ExprKind {
    /// An integer literal.
    Int(i64),
    /// A float literal.
    Float(f64),
    /// A string literal.
    Str(String),
    /// `true` / `false`.
    Bool(bool),
    /// `None`.
    None,
    /// A name, optionally with dimension arguments: `x`, `LSTM`, `Decoder<T>`.
    Name {
        /// The name.
        ident: Ident,
        /// Dimension arguments in `<...>`.
        generics: Vec<DimAst>,
    },
    /// `[a, b]`.
    List(Vec<Expr>),
    /// `(a, b)`; a parenthesised single expression is not a tuple.
    Tuple(Vec<Expr>),
    /// `callee(args)`.
    Call {
        /// What is called: a layer type, a layer value, or a model.
        callee: Box<Expr>,
        /// The arguments.
        args: Vec<Arg>,
        /// The span of the parenthesised argument list.
        args_span: Span,
    },
    /// `x[a:b]` (time slice), `x[i]` (one step), or one selection per axis after the
    /// batch (`x[:, ::2]`, `x[..., -1]`).
    Index {
        /// The sliced tensor.
        base: Box<Expr>,
        /// What is selected, axis by axis from the first after the batch.
        index: Vec<IndexKind>,
        /// The span of the brackets.
        index_span: Span,
    },
    /// `a -> f -> g`: apply each stage to the previous value.
    Chain(Vec<Expr>),
}

impl Expr {
    /// Calls `f` on this expression and on every expression inside it, outer first.
    pub fn walk(&self, f: &mut impl FnMut(&Expr)) {
        f(self);
        match &self.kind {
            ExprKind::List(items) | ExprKind::Tuple(items) | ExprKind::Chain(items) => {
                items.iter().for_each(|i| i.walk(f))
            }
            ExprKind::Call { callee, args, .. } => {
                callee.walk(f);
                args.iter().for_each(|a| a.value.walk(f));
            }
            ExprKind::Index { base, .. } => base.walk(f),
            _ => {}
        }
    }
}

/// One axis's selection inside `x[...]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IndexKind {
    /// `start:end:step`, Python semantics (`x[2:]` along time).
    Slice {
        /// Start (negative counts from the end).
        start: Option<i64>,
        /// End, exclusive (negative counts from the end).
        end: Option<i64>,
        /// Step (`None` when not written; 1 then, or 0 when written as 0, an error).
        step: Option<i64>,
    },
    /// `i`: one position, the axis dropped (`x[-1]`: the last step).
    Step(i64),
    /// `...`: every axis not named.
    Ellipsis,
}

/// A call argument, positional or `name=value`.
#[derive(Debug, Clone, PartialEq)]
pub struct Arg {
    /// The keyword, if any.
    pub name: Option<Ident>,
    /// The value.
    pub value: Expr,
    /// The whole argument.
    pub span: Span,
}
