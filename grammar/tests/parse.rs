//! Grammar tests: every construct of the language parses to the expected AST, layout-free.

use seqmodel_grammar::ast::{DTypeAst, DimAst, ExprKind, IndexKind, Stmt};
use seqmodel_grammar::parse;

#[test]
fn model_header_with_dims_generics_dtype_and_settings() {
    let f =
        parse("/// Doc line\nmodel Dec<T, N>(z: [16], w: [T] of i32) -> ([T, 2], [N]) where batch = 4 { z }")
            .unwrap();
    let m = &f.models[0];
    assert_eq!(m.docs.iter().map(|d| d.text.as_str()).collect::<Vec<_>>(), [" Doc line"]);
    assert_eq!((m.docs[0].span.start, m.docs[0].span.end), (0, "/// Doc line".len()));
    assert_eq!(m.dim_params.iter().map(|d| d.name.as_str()).collect::<Vec<_>>(), ["T", "N"]);
    assert_eq!(m.params[1].ty.dtype.map(|d| d.0), Some(DTypeAst::I32));
    assert_eq!(m.outputs.as_ref().unwrap().len(), 2);
    assert_eq!(m.settings[0].value, 4);
    assert!(matches!(&m.params[1].ty.dims[0], DimAst::Sym(id, 0) if id.name == "T"));
}

#[test]
fn symbolic_dims_with_offsets() {
    let f = parse("model M(x: [T, 5]) -> [T+3, 1] { x }").unwrap();
    let out = &f.models[0].outputs.as_ref().unwrap()[0];
    assert!(matches!(&out.dims[0], DimAst::Sym(id, 3) if id.name == "T"));
}

#[test]
fn arrows_calls_kwargs_slices_and_tuples() {
    let src = "model M(x: [T, 4]) -> [3, 2] { out, h, c = LSTM(8, return_state=true)(x); y = LSTM(2, return_sequences=true)(x, initial_state=[h, c]) y[-3:] }";
    let f = parse(src).unwrap();
    let body = &f.models[0].body;
    assert_eq!(body.len(), 3);
    let Stmt::Assign { targets, .. } = &body[0] else { panic!() };
    assert_eq!(targets.len(), 3);
    let Stmt::Expr(e) = &body[2] else { panic!() };
    let ExprKind::Index { index, .. } = &e.kind else { panic!() };
    assert_eq!(index, &[IndexKind::Slice { start: Some(-3), end: None, step: None }]);
}

#[test]
fn indexes_take_steps_axes_and_the_ellipsis() {
    let src =
        "model M(x: [T, 4]) -> [2] { a = x[::2]; b = x[:, 1:-1:3]; c = x[..., -1]; d = x[-2:1:-1, 0,] a }";
    let f = parse(src).unwrap();
    let index = |i: usize| {
        let Stmt::Assign { value, .. } = &f.models[0].body[i] else { panic!() };
        let ExprKind::Index { index, .. } = &value.kind else { panic!() };
        index.clone()
    };
    let all = IndexKind::Slice { start: None, end: None, step: None };
    assert_eq!(index(0), [IndexKind::Slice { start: None, end: None, step: Some(2) }]);
    assert_eq!(index(1), [all, IndexKind::Slice { start: Some(1), end: Some(-1), step: Some(3) }]);
    assert_eq!(index(2), [IndexKind::Ellipsis, IndexKind::Step(-1)]);
    assert_eq!(
        index(3),
        [IndexKind::Slice { start: Some(-2), end: Some(1), step: Some(-1) }, IndexKind::Step(0)]
    );
}

#[test]
fn layout_does_not_matter() {
    // The macro feeds re-stringified tokens: spaces everywhere, no newlines.
    let a = parse(
        "model M(x: [T, 2]) -> [T, 2] {\n  h = x -> LSTM(4, return_sequences=true)\n  h -> Dense(2)\n}",
    )
    .unwrap();
    let b = parse("model M ( x : [ T , 2 ] ) -> [ T , 2 ] { h = x -> LSTM ( 4 , return_sequences = true ) h -> Dense ( 2 ) }").unwrap();
    assert_eq!(a.models[0].body.len(), b.models[0].body.len());
    let c = parse("# [doc = \" From a macro\"] model M(x: [2]) -> [2] { x }").unwrap();
    assert_eq!(c.models[0].docs.iter().map(|d| d.text.as_str()).collect::<Vec<_>>(), [" From a macro"]);
}

#[test]
fn comments_and_literals() {
    let f = parse("// line\n/* block /* nested */ */ model M(x: [4]) -> [4] { x -> Dropout(0.5) -> Masking(mask_value=-1.0) -> Dense(4, activation='relu', use_bias=False) }").unwrap();
    assert_eq!(f.models.len(), 1);
}

#[test]
fn syntax_errors_say_what_was_expected_and_where() {
    let src = "model M(x: [T, 4]) -> [4] {\n    x -> LSTM(4\n}";
    let e = parse(src).unwrap_err();
    assert!(e.message.starts_with("expected"), "{}", e.message);
    // The closing brace is where `)` was missing.
    assert_eq!(e.span.start, src.rfind('}').unwrap());
    let e = parse("model 3(x: [4]) { x }").unwrap_err();
    assert!(e.message.contains("a name"), "{}", e.message);
}

#[test]
fn a_missing_comma_or_closer_names_both_and_what_it_follows() {
    let cases = [
        (
            "model M(x: [T, 3]) -> [4] { x -> LSTM(50 return_sequences=true) }",
            "expected `,` or `)` after an argument",
            "return_sequences",
        ),
        ("model M(x: [T, 8]) { x -> Dense(4 }", "expected `,` or `)` after an argument", "}"),
        ("model M(x: [T 8]) { x }", "expected `,` or `]` after a dimension", "8"),
        ("model M(x: [T, 8]) { Add()([x x]) }", "expected `,` or `]` after an item", "x"),
        ("model M(x: [T, 8], y: [T, 8]) { (x y) }", "expected `,` or `)` after an item", "y"),
    ];
    for (src, message, at) in cases {
        let e = parse(src).unwrap_err();
        assert_eq!(e.message, message, "{src}");
        assert_eq!(&src[e.span.start..e.span.end], at, "{src}");
    }
    // Elsewhere the message names the construct that was expected.
    let e = parse("model M(x: [T, 8]) { x -> LSTM(4) -> -> Dense(2) }").unwrap_err();
    assert_eq!(e.message, "expected an expression");
}

#[test]
fn a_string_whose_last_line_looks_like_a_comment_keeps_its_span() {
    // Found by the fuzzer: the span of `"a\n // b"` stopped at `//`, and formatting cut the
    // string there.
    let src = "model M(x: [8]) -> [4] {\n    x -> Dense(3, \"a\n // b\") // real\n}\n";
    let once = seqmodel_grammar::format(src).unwrap();
    assert!(once.contains("Dense(3, \"a\n // b\") // real"), "{once}");
    assert_eq!(seqmodel_grammar::format(&once).unwrap(), once);
}
