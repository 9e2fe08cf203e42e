//! Every wrong program under `tests/models/errors` gives located diagnostics; each rendered
//! report is a snapshot.

use std::path::Path;

#[test]
fn every_wrong_program_reports_located_errors() {
    insta::glob!("../../tests/models/errors", "*.seq", |path: &Path| {
        let src = std::fs::read_to_string(path).unwrap();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let errs = match seqmodel_compiler::compile(&src) {
            Ok(_) => panic!("{name} compiled but should fail"),
            Err(e) => e,
        };
        for d in &errs.0 {
            assert!(d.span.end <= src.len(), "{name}: span out of the source");
        }
        insta::assert_snapshot!(errs.render(&name, &src, false));
    });
}

#[test]
fn the_corpus_has_at_least_forty_programs() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/models/errors");
    let n = std::fs::read_dir(dir)
        .unwrap()
        .filter(|e| e.as_ref().unwrap().path().extension().is_some_and(|x| x == "seq"))
        .count();
    assert!(n >= 40, "only {n} wrong programs");
}

#[test]
fn independent_errors_are_all_reported() {
    let src = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../tests/models/errors/44_several_independent_errors.seq"),
    )
    .unwrap();
    let errs = seqmodel_compiler::compile(&src).unwrap_err();
    let codes: Vec<&str> = errs.0.iter().map(|d| d.code).collect();
    assert_eq!(codes, ["SM0408", "SM0206", "SM0202"]);
}

#[test]
fn missing_return_sequences_points_at_the_layer_and_helps() {
    let src = "model M(x: [T, 8]) -> [T, 4] {\n    x -> LSTM(16) -> LSTM(4, return_sequences=true)\n}\n";
    let errs = seqmodel_compiler::compile(src).unwrap_err();
    let d = &errs.0[0];
    assert_eq!(d.code, "SM0302");
    assert_eq!(&src[d.span.start..d.span.end], "LSTM(4, return_sequences=true)");
    assert_eq!(&src[d.secondary[0].span.start..d.secondary[0].span.end], "LSTM(16)");
    assert!(d.help.as_deref().unwrap().contains("return_sequences=true"));
}

#[test]
fn rendered_headers_and_quoted_lines_are_where_the_spans_are() {
    // For every wrong program: one header per diagnostic, naming the primary span's line and
    // column, and every numbered line of the snippet is that line of the source.
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/models/errors");
    for e in std::fs::read_dir(dir).unwrap() {
        let path = e.unwrap().path();
        if path.extension().is_none_or(|x| x != "seq") {
            continue;
        }
        let src = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = src.lines().collect();
        let Err(errs) = seqmodel_compiler::compile(&src) else { panic!("{} compiled", path.display()) };
        for d in &errs.0 {
            let shown = d.render("f.seq", &src, false);
            let headers: Vec<&str> = shown.lines().filter(|l| l.contains("─[ f.seq:")).collect();
            let (line, col) = d.span.line_col(&src);
            assert_eq!(headers.len(), 1, "{}:\n{shown}", path.display());
            assert!(headers[0].contains(&format!("─[ f.seq:{line}:{col} ]")), "{}:\n{shown}", path.display());
            for l in shown.lines() {
                let Some((number, text)) = l.split_once(" │ ") else { continue };
                let Ok(n) = number.trim().parse::<usize>() else { continue };
                // (A label spanning lines draws its bracket before the text.)
                let want = lines[n - 1].trim();
                assert!(text.trim_end().ends_with(want), "{}: line {n}:\n{shown}", path.display());
            }
        }
    }
}

#[test]
fn docs_codes_md_is_the_registry() {
    // `SEQMODEL_WRITE_DOCS=1 cargo test -p seqmodel-compiler --test diagnostics docs_codes`
    // rewrites it after a code changes.
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/codes.md");
    let want = seqmodel_compiler::codes::markdown();
    if std::env::var_os("SEQMODEL_WRITE_DOCS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &want).unwrap();
    }
    assert_eq!(std::fs::read_to_string(&path).unwrap_or_default(), want, "docs/codes.md is out of date");
}
