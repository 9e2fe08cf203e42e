//! Writing files so that nothing the user had is lost: each output goes to a fresh temporary
//! file beside it (created with `create_new`, so a planted file or symlink is never
//! followed), is flushed to disk, then renamed over the destination. A crash leaves the old
//! file or the new one, never a partial one, and a failure removes the temporary.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Writes `bytes` to `path` atomically (see the module doc).
///
/// ```
/// let dir = std::env::temp_dir().join(format!("seqmodel-doc-{}", std::process::id()));
/// std::fs::create_dir_all(&dir).unwrap();
/// let f = dir.join("a.txt");
/// seqmodel_runtime::files::write_atomic(&f, b"hello").unwrap();
/// assert_eq!(std::fs::read(&f).unwrap(), b"hello");
/// std::fs::remove_dir_all(&dir).unwrap();
/// ```
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let (tmp, mut file) = create_temporary(path)?;
    let written = file.write_all(bytes).and_then(|()| file.sync_all());
    drop(file);
    let renamed = written.and_then(|()| std::fs::rename(&tmp, path));
    if renamed.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    renamed?;
    // The rename itself reaches the disk with the folder's entry.
    if let Some(dir) = folder(path).and_then(|d| std::fs::File::open(d).ok()) {
        let _ = dir.sync_all();
    }
    Ok(())
}

fn folder(path: &Path) -> Option<&Path> {
    match path.parent() {
        Some(p) if p.as_os_str().is_empty() => Some(Path::new(".")),
        other => other,
    }
}

/// A new file beside `path` under a name nobody else uses (`.<name>.<pid>-<n>.tmp`).
fn create_temporary(path: &Path) -> std::io::Result<(PathBuf, std::fs::File)> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let dir = folder(path).unwrap_or(Path::new("."));
    let name = path.file_name().map_or("out".into(), |n| n.to_string_lossy());
    let nanos =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    loop {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let tmp = dir.join(format!(".{name}.{}-{nanos:x}-{n}.tmp", std::process::id()));
        match std::fs::OpenOptions::new().write(true).create_new(true).open(&tmp) {
            Ok(f) => return Ok((tmp, f)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
}

/// Checks the outputs of one command before any is written: no two the same file (however
/// spelled), and none existing unless `overwrite`. Returns what is wrong, naming the paths.
pub fn check_outputs(outputs: &[(&str, &Path)], overwrite: bool) -> Result<(), String> {
    let key = |p: &Path| -> PathBuf {
        let dir = folder(p).and_then(|d| std::fs::canonicalize(d).ok()).unwrap_or_default();
        dir.join(p.file_name().unwrap_or_default())
    };
    for (i, (what, p)) in outputs.iter().enumerate() {
        if let Some((other, _)) = outputs[..i].iter().find(|(_, q)| key(q) == key(p)) {
            return Err(format!(
                "{other} and {what} are the same file, {}; give them different paths",
                p.display()
            ));
        }
        if !overwrite && (p.exists() || p.symlink_metadata().is_ok()) {
            return Err(format!("{what} {} exists; pass --force to overwrite it", p.display()));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("seqmodel-files-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[cfg(unix)]
    #[test]
    fn a_planted_symlink_is_replaced_not_followed() {
        let d = scratch("symlink");
        let victim = d.join("victim.txt");
        std::fs::write(&victim, b"keep me").unwrap();
        let out = d.join("out.npy");
        std::os::unix::fs::symlink(&victim, &out).unwrap();
        write_atomic(&out, b"new").unwrap();
        assert_eq!(std::fs::read(&victim).unwrap(), b"keep me");
        assert_eq!(std::fs::read(&out).unwrap(), b"new");
        assert!(!std::fs::symlink_metadata(&out).unwrap().file_type().is_symlink());
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn no_temporary_is_left_behind() {
        let d = scratch("tmp");
        write_atomic(&d.join("a.bin"), b"1").unwrap();
        write_atomic(&d.join("a.bin"), b"2").unwrap();
        let names: Vec<String> = std::fs::read_dir(&d)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["a.bin"]);
        // A destination that cannot be written leaves no temporary either.
        assert!(write_atomic(&d.join("missing/x.bin"), b"1").is_err());
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn outputs_must_be_distinct_and_new() {
        let d = scratch("distinct");
        let a = d.join("w.safetensors");
        let same = d.join(".").join("w.safetensors");
        let e = check_outputs(&[("--save", &a), ("--plot", &same)], false).unwrap_err();
        assert!(e.contains("--save and --plot are the same file"), "{e}");
        std::fs::write(&a, b"x").unwrap();
        let e = check_outputs(&[("--save", &a)], false).unwrap_err();
        assert!(e.contains("exists"), "{e}");
        assert!(check_outputs(&[("--save", &a)], true).is_ok());
        std::fs::remove_dir_all(&d).unwrap();
    }
}
