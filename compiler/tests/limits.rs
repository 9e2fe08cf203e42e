//! Inputs at and past the nesting limits give errors, never a stack overflow, whatever the
//! stack of the calling thread.

fn compile_on_small_stack(src: String) -> Result<usize, Vec<String>> {
    std::thread::Builder::new()
        .stack_size(256 << 10)
        .spawn(move || {
            seqmodel_compiler::compile(&src)
                .map(|c| c.programs.len())
                .map_err(|e| e.0.iter().map(|d| d.code.to_string()).collect())
        })
        .unwrap()
        .join()
        .unwrap()
}

#[test]
fn nesting_up_to_the_limit_checks_and_past_it_is_an_error() {
    let parens = |n: usize| format!("model M(x: [T, 3]) -> [T, 3] {{ {}x{} }}", "(".repeat(n), ")".repeat(n));
    assert_eq!(compile_on_small_stack(parens(255)), Ok(1));
    assert_eq!(compile_on_small_stack(parens(10_000)), Err(vec!["SM0001".to_string()]));
    let chain = |n: usize| format!("model M(x: [T, 3]) -> [_, 3] {{ x{} }}", "[-1:]".repeat(n));
    assert_eq!(compile_on_small_stack(chain(1000)), Ok(1));
    assert_eq!(compile_on_small_stack(chain(100_000)), Err(vec!["SM0001".to_string()]));
}

#[test]
fn model_calls_nested_past_the_limit_are_an_error() {
    let models = |n: usize| {
        let mut s = vec!["model M0(x: [T, 3]) -> [T, 3] { x }".to_string()];
        s.extend((1..n).map(|i| format!("model M{i}(x: [T, 3]) -> [T, 3] {{ M{}(x) }}", i - 1)));
        s.join("\n")
    };
    assert_eq!(compile_on_small_stack(models(200)), Ok(200));
    let e = compile_on_small_stack(models(300)).unwrap_err();
    assert!(e.iter().all(|c| c == "SM0413" || c == "SM0418"), "{e:?}");
}

/// Of equally close names the first in the file is suggested, whatever the hashing.
#[test]
fn the_suggestion_among_equally_close_models_is_the_first() {
    let src = "model M1(x: [T, 3]) -> [T, 3] { x }\nmodel M2(x: [T, 3]) -> [T, 3] { x }\n\
               model Top(x: [T, 3]) -> [T, 3] { Mz(x) }";
    let e = seqmodel_compiler::compile(src).unwrap_err();
    assert_eq!(e.0.len(), 1);
    assert_eq!(e.0[0].help.as_deref(), Some("did you mean `M1`?"));
}

/// Each of many models misspelling a model's name is an error; "did you mean" searches share
/// one budget per file (each scans every model's name, which made such a file quadratic), so
/// the first errors have a suggestion and the last, past the budget, only the error.
#[test]
fn every_misspelt_name_is_an_error_and_suggestions_stop_at_the_budget() {
    let n = 2_100;
    let mut src = String::from("model M0(x: [T, 3]) -> [T, 3] { x }\n");
    for i in 1..n {
        src.push_str(&format!("model M{i}(x: [T, 3]) -> [T, 3] {{ M_0(x) }}\n"));
    }
    let e = seqmodel_compiler::compile(&src).unwrap_err();
    assert_eq!(e.0.len(), n - 1);
    assert!(e.0.iter().all(|d| d.code == "SM0101"));
    assert_eq!(e.0[0].help.as_deref(), Some("did you mean `M0`?"));
    assert_eq!(e.0.last().unwrap().help, None);
}
