//! Records whether the runtime itself is compiled without optimisations, so that `fit` can
//! say why training is slow in a debug build (cargo gives build scripts the package's
//! `OPT_LEVEL`; no `cfg` tells the code itself).

fn main() {
    println!("cargo:rustc-check-cfg=cfg(seqmodel_unoptimized)");
    println!("cargo:rerun-if-env-changed=OPT_LEVEL");
    if std::env::var("OPT_LEVEL").is_ok_and(|l| l == "0") {
        println!("cargo:rustc-cfg=seqmodel_unoptimized");
    }
}
