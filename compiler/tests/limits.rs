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
