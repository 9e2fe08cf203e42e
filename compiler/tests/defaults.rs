//! Every Keras default the catalogue records (shown by completion) is the real default:
//! writing it out gives exactly the program that omitting it gives.

/// A model using `class` with its required arguments; `{}` is where more arguments go.
fn snippet(class: &str) -> Option<(&'static str, &'static str)> {
    Some(match class {
        "Dense" => ("x: [4]", "x -> Dense(3{})"),
        "LSTM" | "GRU" | "SimpleRNN" => ("x: [T, 4]", ""),
        "Bidirectional" => ("x: [T, 4]", "x -> Bidirectional(LSTM(3){})"),
        "Embedding" => ("w: [T] of i32", "w -> Embedding(9, 4{})"),
        "Masking" => ("x: [T, 4]", "x -> Masking(MASK)"),
        "Cropping1D" => ("x: [6, 4]", "x -> Cropping1D(MASK)"),
        "ZeroPadding1D" => ("x: [6, 4]", "x -> ZeroPadding1D(MASK)"),
        "Concatenate" => ("x: [T, 4]", "Concatenate(MASK)([x, x])"),
        "Mean" => ("x: [T, 4]", "Mean(axis=1{})(x)"),
        "Sum" => ("x: [T, 4]", "Sum(axis=1{})(x)"),
        "Max" => ("x: [T, 4]", "Max(axis=1{})(x)"),
        "Min" => ("x: [T, 4]", "Min(axis=1{})(x)"),
        "Any" => ("x: [T, 4]", "Any(axis=1{})(x)"),
        "All" => ("x: [T, 4]", "All(axis=1{})(x)"),
        _ => return None,
    })
}

fn fingerprint(src: &str) -> u64 {
    let c = seqmodel_compiler::compile(src)
        .unwrap_or_else(|e| panic!("{}\n{}", src, e.render("d.seq", src, false)));
    c.programs[0].fingerprint()
}

#[test]
fn every_recorded_default_changes_nothing() {
    let mut checked = 0;
    for class in seqmodel_compiler::layers::classes() {
        for arg in class.args.iter().filter(|a| a.default.is_some()) {
            let (input, body) =
                snippet(class.name).unwrap_or_else(|| panic!("add a snippet for {}", class.name));
            let body = if body.is_empty() { format!("x -> {}(3{{}})", class.name) } else { body.to_string() };
            let with = |extra: &str| {
                let b = if body.contains("MASK") {
                    body.replace("MASK", extra.trim_start_matches(", "))
                } else {
                    body.replace("{}", extra)
                };
                format!("model D({input}) {{ {b} }}")
            };
            let explicit = format!(", {}={}", arg.name, arg.default.unwrap());
            assert_eq!(
                fingerprint(&with(&explicit)),
                fingerprint(&with("")),
                "{}: {}",
                class.name,
                with(&explicit)
            );
            checked += 1;
        }
    }
    assert!(checked >= 30, "{checked}");
}
