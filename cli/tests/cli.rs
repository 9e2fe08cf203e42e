//! End-to-end tests of the `seqc` binary.

use std::path::{Path, PathBuf};
use std::process::Command;

fn seqc() -> Command {
    Command::new(env!("CARGO_BIN_EXE_seqc"))
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

#[test]
fn conformance_passes_every_visible_inference_case() {
    let dir = root().join("../shared/conformance");
    let out = seqc().arg("conformance").arg(&dir).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    let last = stdout.lines().last().unwrap();
    let passed: usize = last.split(' ').next().unwrap().parse().unwrap();
    assert!(passed >= 25, "{last}");
    assert!(last.contains(" 0 failed"), "{last}");
}

/// The layers suite (convolution, pooling, normalisation, reshaping, attention, Keras
/// operations, ...): every case passes.
#[test]
fn conformance_passes_every_layers_case() {
    let dir = root().join("../shared/conformance-layers");
    let out = seqc().arg("conformance").arg(&dir).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    let last = stdout.lines().last().unwrap();
    let passed: usize = last.split(' ').next().unwrap().parse().unwrap();
    assert!(passed >= 19, "{last}");
    assert!(last.contains(" 0 failed"), "{last}");
}

/// This repository's own Keras cases (`tests/keras`: operations between layers, masks
/// computed in the graph, a training through them), made by `tests/keras/make_cases.py`.
#[test]
fn conformance_passes_every_operations_case() {
    let dir = root().join("tests/keras");
    let out = seqc().arg("conformance").arg(&dir).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    let last = stdout.lines().last().unwrap();
    let passed: usize = last.split(' ').next().unwrap().parse().unwrap();
    assert!(passed >= 19, "{last}");
    assert!(last.contains(" 0 failed"), "{last}");
}

#[test]
fn check_accepts_every_example() {
    let mut files: Vec<PathBuf> =
        std::fs::read_dir(root().join("examples")).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    let out = seqc().arg("check").args(&files).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn check_reports_errors_with_exit_code_one() {
    let f = root().join("tests/models/errors/01_missing_return_sequences.seq");
    let out = seqc().arg("check").arg(&f).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("SM0302") && err.contains("return_sequences=true"), "{err}");
}

#[test]
fn arbitrary_bytes_never_crash_check() {
    let dir = std::env::temp_dir().join(format!("seqc-bytes-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let inputs: Vec<Vec<u8>> = vec![
        vec![],
        vec![0xff, 0xfe, 0x00, 0x41],
        b"model".to_vec(),
        b"model M(x: [T, 4]) -> [4] { x -> LSTM(4) ".to_vec(),
        (0..=255u8).collect(),
        b"model M(x: [99999999999999999999999, 4]) -> [4] { x -> LSTM(4) }".to_vec(),
        b"model M(x: [T, 4]) -> [4] { x -> LSTM(-3) }".to_vec(),
        b"model M(x: [T, 4]) -> [4] { x[-99999999999:] -> LSTM(4) }".to_vec(),
    ];
    for (i, bytes) in inputs.iter().enumerate() {
        let f = dir.join(format!("in{i}.seq"));
        std::fs::write(&f, bytes).unwrap();
        let out = seqc().arg("check").arg(&f).output().unwrap();
        let code = out.status.code();
        assert!(
            code == Some(0) || code == Some(1),
            "input {i}: exit {code:?}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        if code == Some(1) {
            assert!(!out.stderr.is_empty(), "input {i}: no message");
        }
    }
}

#[test]
fn summary_prints_keras_style_totals() {
    let out = seqc().arg("summary").arg(root().join("examples/language_model.seq")).output().unwrap();
    let s = String::from_utf8_lossy(&out.stdout);
    assert!(s.contains("Total params: 3802640"), "{s}");
    assert!(s.contains("(None, T, 10000)"), "{s}");
}

#[test]
fn graph_prints_dot_and_does_not_overwrite() {
    let out = seqc().arg("graph").arg(root().join("examples/autoencoder.seq")).output().unwrap();
    let s = String::from_utf8_lossy(&out.stdout);
    assert!(s.starts_with("digraph") && s.contains("->"), "{s}");
    let dir = std::env::temp_dir().join(format!("seqc-graph-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let target = dir.join("g.dot");
    std::fs::write(&target, "keep me").unwrap();
    let out = seqc()
        .arg("graph")
        .arg(root().join("examples/autoencoder.seq"))
        .arg("-o")
        .arg(&target)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep me");
}

#[test]
fn demo_trains_and_writes_weights_and_plot_without_overwriting() {
    let dir = std::env::temp_dir().join(format!("seqc-demo-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    for round in 0..2 {
        let out = seqc().args(["demo", "--epochs", "15"]).current_dir(&dir).output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        assert!(stdout.contains("Total params: 16728"), "{stdout}");
        let line = stdout.lines().find(|l| l.contains("trained 15 epochs")).unwrap();
        let nums: Vec<f32> =
            line.split("loss ").nth(1).unwrap().split(" -> ").map(|v| v.trim().parse().unwrap()).collect();
        assert!(nums[1] < nums[0], "loss did not fall: {line}");
        let sub = if round == 0 { "seqmodel-demo" } else { "seqmodel-demo-2" };
        assert!(dir.join(sub).join("autoencoder.safetensors").is_file());
        assert!(std::fs::read_to_string(dir.join(sub).join("loss.svg")).unwrap().contains("<polyline"));
    }
}

#[test]
fn train_command_fits_and_refuses_to_overwrite() {
    let dir = std::env::temp_dir().join(format!("seqc-train-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let case = root().join("../shared/conformance/train_dense_mae");
    let seq = dir.join("m.seq");
    std::fs::write(&seq, "model M(x: [4]) -> [1] { x -> Dense(8, activation=\"relu\") -> Dense(1) }")
        .unwrap();
    let save = dir.join("w.safetensors");
    let run = |force: bool| {
        let mut c = seqc();
        c.arg("train")
            .arg(&seq)
            .arg("--x")
            .arg(case.join("x_train.npy"))
            .arg("--y")
            .arg(case.join("y_train.npy"));
        c.args([
            "--loss",
            "mae",
            "--optimizer",
            "adam",
            "--lr",
            "0.01",
            "--epochs",
            "5",
            "--batch-size",
            "4",
        ]);
        c.arg("--save").arg(&save).arg("--plot").arg(dir.join("loss.svg"));
        if force {
            c.arg("--force");
        }
        c.output().unwrap()
    };
    let out = run(false);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(save.is_file() && dir.join("loss.svg").is_file());
    assert_eq!(run(false).status.code(), Some(1));
    assert!(run(true).status.success());
}

#[test]
fn import_then_run_reproduces_keras() {
    let case = root().join("../shared/conformance/autoencoder_nested");
    let dir = std::env::temp_dir().join(format!("seqc-import-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let seq = dir.join("ae.seq");
    let w = dir.join("ae.safetensors");
    let out = seqc()
        .arg("import")
        .arg(case.join("model.keras"))
        .arg("-o")
        .arg(&seq)
        .arg("--weights")
        .arg(&w)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // A second import does not overwrite.
    let again = seqc().arg("import").arg(case.join("model.keras")).arg("-o").arg(&seq).output().unwrap();
    assert_eq!(again.status.code(), Some(1));
    let outdir = dir.join("out");
    let run = seqc_run(&seq, &w, case.join("input.npy"), &outdir);
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let got = std::fs::read(outdir.join("output_0.npy")).unwrap();
    let want = std::fs::read(case.join("expected.npy")).unwrap();
    // Same header (shape, dtype) and values within 1e-5.
    assert_eq!(got.len(), want.len());
    let n = (got.len() - 128) / 4;
    let f = |b: &[u8], i: usize| f32::from_le_bytes(b[b.len() - 4 * n + 4 * i..][..4].try_into().unwrap());
    for i in 0..n {
        assert!((f(&got, i) - f(&want, i)).abs() <= 1e-5);
    }
}

#[test]
fn corrupt_npy_inputs_are_errors() {
    let case = root().join("../shared/conformance/many_to_one_lstm");
    let dir = std::env::temp_dir().join(format!("seqc-npy-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let seq = dir.join("m.seq");
    let w = dir.join("m.safetensors");
    let out = seqc()
        .arg("import")
        .arg(case.join("model.keras"))
        .arg("-o")
        .arg(&seq)
        .arg("--weights")
        .arg(&w)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let good = std::fs::read(case.join("input.npy")).unwrap();
    let bad_inputs: Vec<Vec<u8>> =
        vec![good[..good.len() / 2].to_vec(), good[..20].to_vec(), b"not an npy".to_vec(), vec![]];
    for (i, bytes) in bad_inputs.iter().enumerate() {
        let f = dir.join(format!("bad{i}.npy"));
        std::fs::write(&f, bytes).unwrap();
        let run = seqc_run(&seq, &w, &f, dir.join(format!("out{i}")));
        assert_eq!(run.status.code(), Some(1), "input {i}");
        let err = String::from_utf8_lossy(&run.stderr);
        assert!(err.contains(&format!("bad{i}.npy")), "input {i}: {err}");
    }
}

#[test]
fn build_prints_code_and_writes_a_standalone_crate_that_passes_its_tests() {
    let out = seqc().arg("build").arg(root().join("examples/many_to_one.seq")).output().unwrap();
    let code = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && code.contains("pub struct ManyToOne") && code.contains("pub fn predict"),
        "{code}"
    );
    let dir = std::env::temp_dir().join(format!("seqc-crate-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let out = seqc()
        .arg("build")
        .arg(root().join("examples/autoencoder.seq"))
        .arg("--crate")
        .arg(&dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let test = Command::new(env!("CARGO"))
        .args(["test", "--offline", "--quiet", "--manifest-path"])
        .arg(dir.join("Cargo.toml"))
        .env("CARGO_TARGET_DIR", root().join("target/standalone-crate"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&test.stdout);
    assert!(test.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&test.stderr));
    assert!(stdout.contains("3 passed"), "{stdout}"); // Decoder<T> alone too, with `t` as an argument
    // The folder exists now: a second build refuses to overwrite it.
    let again = seqc()
        .arg("build")
        .arg(root().join("examples/autoencoder.seq"))
        .arg("--crate")
        .arg(&dir)
        .output()
        .unwrap();
    assert_eq!(again.status.code(), Some(1));
}

/// `--weights` bakes a checked safetensors file into the printed code; one that does not fit
/// the model fails with the file and the weight named, and prints no code.
#[test]
fn build_bakes_checked_weights() {
    let models = root().join("tests/generated/models");
    let out = seqc()
        .arg("build")
        .arg(models.join("tiny.seq"))
        .arg("--weights")
        .arg(models.join("tiny.safetensors"))
        .output()
        .unwrap();
    let code = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && code.contains("pub fn baked() -> Self"), "{code}");
    assert!(code.contains("include_bytes!") && code.contains("tiny.safetensors"), "{code}");
    let bad = seqc()
        .arg("build")
        .arg(models.join("tiny.seq"))
        .arg("--weights")
        .arg(models.join("tiny_misshaped.safetensors"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&bad.stderr);
    assert_eq!(bad.status.code(), Some(1), "{err}");
    assert!(bad.stdout.is_empty() && err.contains("`Tiny/dense/kernel` has shape [2, 3]"), "{err}");
}

#[test]
fn build_no_std_writes_the_step_function_or_names_why_not() {
    let seq = root().join("bench/models/gen_stateful.seq");
    let weights = root().join("tests/no_std/models/gen_stateful.safetensors");
    let out = seqc().arg("build").arg(&seq).arg("--weights").arg(&weights).arg("--no-std").output().unwrap();
    let code = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && code.contains("pub fn step(") && code.contains("static W1_KERNEL"),
        "{code}"
    );
    let models = root().join("tests/generated/models");
    let bad = seqc()
        .arg("build")
        .arg(models.join("tiny.seq"))
        .arg("--weights")
        .arg(models.join("tiny.safetensors"))
        .arg("--no-std")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(!bad.status.success() && bad.stdout.is_empty() && err.contains("has no `no_std` code"), "{err}");
    // Without weights there is nothing to compile in.
    let none = seqc().arg("build").arg(&seq).arg("--no-std").output().unwrap();
    assert!(!none.status.success() && String::from_utf8_lossy(&none.stderr).contains("--weights"));
}

#[test]
fn explain_prints_a_code_s_long_explanation_like_rustc_explain() {
    let out = seqc().args(["explain", "SM0302"]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && text.starts_with("SM0302: a sequence is needed"), "{text}");
    assert!(text.contains("Wrong:") && text.contains("return_sequences=true"), "{text}");
    let list = seqc().arg("explain").output().unwrap();
    assert!(String::from_utf8_lossy(&list.stdout).lines().count() > 40);
    let unknown = seqc().args(["explain", "E9"]).output().unwrap();
    assert_eq!(unknown.status.code(), Some(1));
}

/// The outputs of one command are checked before any is written: two flags naming one file
/// are refused (the weights used to replace the `.seq`), and a `run` whose second output
/// exists writes nothing.
#[test]
fn outputs_are_distinct_and_checked_before_writing() {
    let case = root().join("../shared/conformance/many_to_one_lstm");
    let dir = std::env::temp_dir().join(format!("seqc-outputs-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let same = dir.join("m.seq");
    let out = seqc()
        .arg("import")
        .arg(case.join("model.keras"))
        .arg("-o")
        .arg(&same)
        .arg("--weights")
        .arg(dir.join(".").join("m.seq"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("-o and --weights are the same file"), "{err}");
    assert!(!same.exists(), "nothing was written");

    // A model with two outputs, whose second output file exists already.
    let seq = dir.join("two.seq");
    std::fs::write(&seq, "model Two(x: [T, 3]) -> ([2], [2]) { h = LSTM(2)(x); (h, h) }").unwrap();
    let w = dir.join("two.safetensors");
    let program =
        seqmodel_compiler::compile(&std::fs::read_to_string(&seq).unwrap()).unwrap().main().unwrap().clone();
    seqmodel_runtime::WeightStore::random(&program, 1, 0.1).save(&w, false).unwrap();
    let outdir = dir.join("out");
    std::fs::create_dir_all(&outdir).unwrap();
    std::fs::write(outdir.join("output_1.npy"), b"keep").unwrap();
    let run = seqc_run(&seq, &w, case.join("input.npy"), &outdir);
    assert_eq!(run.status.code(), Some(1), "{}", String::from_utf8_lossy(&run.stdout));
    assert!(!outdir.join("output_0.npy").exists(), "no output written before the check");
    assert_eq!(std::fs::read(outdir.join("output_1.npy")).unwrap(), b"keep");
    // An --output-dir that is a file is named as such (it said "File exists (os error 17)").
    let run = seqc_run(&seq, &w, case.join("input.npy"), outdir.join("output_1.npy"));
    let err = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(1), "{err}");
    assert!(err.contains("output_1.npy is a file, not a folder"), "{err}");
    assert_eq!(std::fs::read(outdir.join("output_1.npy")).unwrap(), b"keep");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn fmt_rewrites_in_place_checks_and_leaves_broken_files_alone() {
    let dir = std::env::temp_dir().join(format!("seqc-fmt-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // Every example is already in the canonical layout.
    let examples: Vec<PathBuf> = std::fs::read_dir(root().join("examples"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "seq"))
        .collect();
    let out = seqc().arg("fmt").arg("--check").args(&examples).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    let messy = dir.join("messy.seq");
    let src = "model M(x:[T,3])->[2]{x->LSTM(4) // enc\n->Dense(2)}";
    std::fs::write(&messy, src).unwrap();
    let out = seqc().arg("fmt").arg("--check").arg(&messy).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("messy.seq: not formatted"));
    assert_eq!(std::fs::read_to_string(&messy).unwrap(), src, "--check changed the file");
    let out = seqc().arg("fmt").arg(&messy).output().unwrap();
    assert!(out.status.success());
    let tidy = std::fs::read_to_string(&messy).unwrap();
    assert_eq!(tidy, "model M(x: [T, 3]) -> [2] {\n    x -> LSTM(4) // enc\n      -> Dense(2)\n}\n");
    assert!(seqc().arg("fmt").arg("--check").arg(&messy).output().unwrap().status.success());
    let broken = dir.join("broken.seq");
    std::fs::write(&broken, "model M(x: [4]) { x -> Dense(4 }").unwrap();
    let out = seqc().arg("fmt").arg(&broken).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("expected `,` or `)` after an argument"));
    assert_eq!(std::fs::read_to_string(&broken).unwrap(), "model M(x: [4]) { x -> Dense(4 }");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A `.npy` of zeros (float32, C order) of `shape`.
fn zeros_npy(path: &Path, shape: &[usize]) {
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    let mut header = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': ({},), }}", dims.join(", "));
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
    bytes.extend_from_slice(&(header.len() as u16).to_le_bytes());
    bytes.extend_from_slice(header.as_bytes());
    bytes.resize(bytes.len() + 4 * shape.iter().product::<usize>(), 0);
    std::fs::write(path, bytes).unwrap();
}

/// `seqc run seq --weights weights --input input --output-dir out`.
fn seqc_run(
    seq: &Path,
    weights: &Path,
    input: impl AsRef<std::ffi::OsStr>,
    out: impl AsRef<std::ffi::OsStr>,
) -> std::process::Output {
    seqc()
        .arg("run")
        .arg(seq)
        .arg("--weights")
        .arg(weights)
        .arg("--input")
        .arg(input)
        .arg("--output-dir")
        .arg(out)
        .output()
        .unwrap()
}

/// `seqc args` run in `dir` with at most `kib` KiB of address space (`ulimit -v`).
#[cfg(target_os = "linux")]
fn seqc_with_memory_limit(dir: &Path, kib: usize, args: &[&str]) -> std::process::Output {
    Command::new("sh")
        .arg("-c")
        .arg(format!("ulimit -v {kib} && exec \"$0\" \"$@\""))
        .arg(env!("CARGO_BIN_EXE_seqc"))
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap()
}

/// `seqc train` of `model` on zeros shaped `x` and `y` with at most `kib` KiB of address
/// space: it must fail with exit code 1 and write no weights; returns its stderr.
#[cfg(target_os = "linux")]
fn train_under_memory_limit(name: &str, model: &str, x: &[usize], y: &[usize], kib: usize) -> String {
    let dir = std::env::temp_dir().join(format!("seqc-oom-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("m.seq"), model).unwrap();
    zeros_npy(&dir.join("x.npy"), x);
    zeros_npy(&dir.join("y.npy"), y);
    let out = seqc_with_memory_limit(
        &dir,
        kib,
        &["train", "m.seq", "--x", "x.npy", "--y", "y.npy", "--save", "w.safetensors"],
    );
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(!dir.join("w.safetensors").exists());
    std::fs::remove_dir_all(&dir).unwrap();
    stderr
}

/// A model whose weights do not fit in the memory the process may use is an error that
/// names the model and the bytes, with exit code 1, not an allocation abort.
#[cfg(target_os = "linux")]
#[test]
fn a_model_too_large_for_memory_is_an_error_not_an_abort() {
    let model = "model Big(x: [T, 20000]) -> [20000] { x -> LSTM(20000) }";
    let stderr = train_under_memory_limit("weights", model, &[1, 2, 20000], &[1, 20000], 3_000_000);
    assert!(
        stderr.contains("model `Big`")
            && stderr.contains("12.8 GB")
            && stderr.contains("cannot be allocated"),
        "{stderr}"
    );
}

/// A layer whose output does not fit in the memory the process may use (here 1.6 GB from
/// 1.6 KB of input) is an error naming the layer, the shape and the bytes, with exit code 1,
/// not an allocation abort: the interpreter's and the trainer's buffers are allocated
/// fallibly.
#[cfg(target_os = "linux")]
#[test]
fn a_layer_output_too_large_for_memory_is_an_error_naming_the_layer() {
    let model =
        "model Up(x: [100, 4]) -> [1] { x -> UpSampling1D(1000000) -> GlobalAveragePooling1D() -> Dense(1) }";
    let stderr = train_under_memory_limit("output", model, &[1, 100, 4], &[1, 1], 1_000_000);
    assert!(
        stderr.contains("layer `up_sampling1d`: an output of shape [1, 100000000, 4] needs 1.6 GB")
            && stderr.contains("cannot be allocated"),
        "{stderr}"
    );
}
