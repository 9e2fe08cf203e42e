//! Compile-fail tests of `seqmodel!`: each `.stderr` shows the error on the right token (inline)
//! or at the right `file:line:col` (file form).

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/fail/*.rs");
    t.pass("tests/ui/pass/*.rs");
}
