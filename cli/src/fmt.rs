//! `seqc fmt`: rewrites `.seq` files in the canonical layout (`seqmodel_grammar::format`),
//! or with `--check` only reports the files that are not.

use std::path::PathBuf;
use std::process::ExitCode;

use seqmodel_compiler::Diagnostic;

use crate::Failure;

/// `seqc fmt [--check] FILES`: each file is parsed (a syntax error is reported and the file
/// left alone), printed canonically, and written back only if that changes it (atomically).
pub fn run(files: &[PathBuf], check: bool, color: bool) -> Result<ExitCode, Failure> {
    let mut bad = 0;
    for path in files {
        let src = crate::read_source(path)?;
        let tidy = match seqmodel_grammar::format(&src) {
            Ok(t) => t,
            Err(e) => {
                let d = Diagnostic::error("SM0001", e.span, format!("syntax error: {}", e.message))
                    .with_label(e.message.clone());
                eprint!("{}", d.render(&path.display().to_string(), &src, color));
                eprintln!("error: {} not formatted: it does not parse", path.display());
                bad += 1;
                continue;
            }
        };
        if tidy == src {
            continue;
        }
        if check {
            println!("{}: not formatted", path.display());
            bad += 1;
        } else {
            seqmodel_runtime::files::write_atomic(path, tidy.as_bytes())
                .map_err(|e| Failure(format!("cannot write {}: {e}", path.display())))?;
            eprintln!("formatted {}", path.display());
        }
    }
    Ok(if bad == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}
