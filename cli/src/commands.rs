//! The subcommands.

use std::path::Path;
use std::process::ExitCode;

use seqmodel_compiler::{Compiled, compile, dot, ir::Program, summary};

use crate::{Failure, read_source};

/// Compiles a file, printing diagnostics; `Err` when it has errors.
pub fn compile_file(path: &Path, color: bool) -> Result<Compiled, Failure> {
    let src = read_source(path)?;
    compile(&src).map_err(|errs| {
        eprint!("{}", errs.render(&path.display().to_string(), &src, color));
        Failure(format!("could not compile {}: {errs}", path.display()))
    })
}

/// Picks a model by name or the file's last one.
pub fn pick<'a>(c: &'a Compiled, name: Option<&str>) -> Result<&'a Program, Failure> {
    match name {
        Some(n) => c.program(n).ok_or_else(|| {
            let names: Vec<&str> = c.programs.iter().map(|p| p.name.as_str()).collect();
            Failure(format!("no model `{n}`; the file defines: {}", names.join(", ")))
        }),
        None => c.main().ok_or_else(|| Failure("the file defines no model".into())),
    }
}

/// `seqc check`.
pub fn check(files: &[std::path::PathBuf], color: bool) -> Result<ExitCode, Failure> {
    let mut failed = 0;
    for f in files {
        match compile_file(f, color) {
            Ok(c) => {
                let names: Vec<&str> = c.programs.iter().map(|p| p.name.as_str()).collect();
                println!("{}: ok ({})", f.display(), names.join(", "));
            }
            Err(Failure(msg)) => {
                eprintln!("error: {msg}");
                failed += 1;
            }
        }
    }
    Ok(if failed == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

/// `seqc summary`.
pub fn summary(file: &Path, model: Option<&str>, color: bool) -> Result<ExitCode, Failure> {
    let c = compile_file(file, color)?;
    print!("{}", summary::render(pick(&c, model)?));
    Ok(ExitCode::SUCCESS)
}

/// `seqc graph`.
pub fn graph(
    file: &Path,
    model: Option<&str>,
    output: Option<&Path>,
    force: bool,
    color: bool,
) -> Result<ExitCode, Failure> {
    let c = compile_file(file, color)?;
    let text = dot::to_dot(pick(&c, model)?);
    let Some(out) = output else {
        print!("{text}");
        return Ok(ExitCode::SUCCESS);
    };
    if out.exists() && !force {
        return Err(Failure(format!("{} exists; pass --force to overwrite it", out.display())));
    }
    if out.extension().is_some_and(|e| e == "svg") {
        let mut child = std::process::Command::new("dot")
            .args(["-Tsvg", "-o"])
            .arg(out)
            .stdin(std::process::Stdio::piped())
            .spawn()
            .map_err(|e| Failure(format!("cannot run Graphviz `dot` ({e}); write a .dot file instead")))?;
        use std::io::Write;
        child.stdin.take().expect("piped stdin").write_all(text.as_bytes())?;
        let status = child.wait()?;
        if !status.success() {
            return Err(Failure(format!("`dot` failed with {status}")));
        }
    } else {
        write_new(out, text.as_bytes())?;
    }
    eprintln!("wrote {}", out.display());
    Ok(ExitCode::SUCCESS)
}

/// Writes a file atomically (a fresh temporary beside it, fsynced, renamed over it).
pub fn write_new(path: &Path, bytes: &[u8]) -> Result<(), Failure> {
    seqmodel_runtime::files::write_atomic(path, bytes)
        .map_err(|e| Failure(format!("cannot write {}: {e}", path.display())))
}

/// Checks a command's outputs before any is written (distinct, and new unless `force`).
pub fn check_outputs(outputs: &[(&str, &Path)], force: bool) -> Result<(), Failure> {
    seqmodel_runtime::files::check_outputs(outputs, force).map_err(Failure)
}

/// `seqc import`: Keras file → `.seq` (+ safetensors weights). Never overwrites unasked.
pub fn import(model: &Path, output: &Path, weights: Option<&Path>, force: bool) -> Result<ExitCode, Failure> {
    let mut outputs = vec![("-o", output)];
    outputs.extend(weights.map(|w| ("--weights", w)));
    check_outputs(&outputs, force)?;
    let imported = seqmodel_keras::import_file(model)?;
    write_new(output, imported.source.as_bytes())?;
    for r in &imported.regularizers {
        eprintln!("warning: {r} is not applied in training (inference is unchanged)");
    }
    eprintln!(
        "wrote {} (model `{}`, {} parameters)",
        output.display(),
        imported.program.name,
        imported.program.param_count()
    );
    if let Some(w) = weights {
        let mut store = imported.weights.clone();
        store.tag(&imported.program);
        store.save(w, true)?;
        eprintln!("wrote {} ({} tensors)", w.display(), imported.weights.len());
    }
    Ok(ExitCode::SUCCESS)
}

/// `seqc run`: runs a model on `.npy` inputs and writes each output as `.npy`.
pub fn run(
    file: &Path,
    model: Option<&str>,
    weights: &Path,
    inputs: &[std::path::PathBuf],
    output_dir: &Path,
    any_architecture: bool,
    color: bool,
) -> Result<ExitCode, Failure> {
    let c = compile_file(file, color)?;
    let program = pick(&c, model)?.clone();
    let mut store = seqmodel_runtime::WeightStore::load(weights)?;
    if any_architecture {
        store.untag();
    }
    // Every output is checked before any is written (one existing file wrote the others first).
    let paths: Vec<std::path::PathBuf> =
        (0..program.outputs.len()).map(|i| output_dir.join(format!("output_{i}.npy"))).collect();
    if output_dir.exists() && !output_dir.is_dir() {
        return Err(Failure(format!("--output-dir {} is a file, not a folder", output_dir.display())));
    }
    if let Some(p) = paths.iter().find(|p| p.symlink_metadata().is_ok()) {
        return Err(Failure(format!("{} exists; choose an empty --output-dir", p.display())));
    }
    let mut m = seqmodel_runtime::Model::new(program, &store)?;
    let xs = inputs.iter().map(|p| crate::npy::read(p)).collect::<Result<Vec<_>, _>>()?;
    let outs = m.predict(&xs)?;
    std::fs::create_dir_all(output_dir)
        .map_err(|e| Failure(format!("cannot create the output folder {}: {e}", output_dir.display())))?;
    for (path, o) in paths.iter().zip(&outs) {
        crate::npy::write(path, o)?;
        println!("{} {:?}", path.display(), o.shape());
    }
    Ok(ExitCode::SUCCESS)
}

/// `seqc build`: the generated Rust, formatted (the main model's `no_std` code with
/// `no_std`, which needs `weights`).
pub fn build(
    file: &Path,
    output: Option<&Path>,
    weights: Option<&Path>,
    no_std: bool,
    force: bool,
    color: bool,
) -> Result<ExitCode, Failure> {
    let c = compile_file(file, color)?;
    let bake = |w: &Path| {
        seqmodel_compiler::baked::check_for_main(w, &w.display().to_string(), c.programs.last())
            .map_err(|e| Failure(e.to_string()))
    };
    let baked = weights.map(bake).transpose()?;
    let code = match (&baked, no_std) {
        (Some(b), true) => seqmodel_compiler::codegen::embedded::render(&c, b).map_err(Failure)?,
        (None, true) => return Err(Failure("--no-std needs --weights".into())),
        _ => seqmodel_compiler::codegen::render_baked(&c, baked.as_ref()),
    };
    match output {
        None => print!("{code}"),
        Some(out) => {
            if out.exists() && !force {
                return Err(Failure(format!("{} exists; pass --force to overwrite it", out.display())));
            }
            write_new(out, code.as_bytes())?;
            eprintln!("wrote {}", out.display());
        }
    }
    Ok(ExitCode::SUCCESS)
}
