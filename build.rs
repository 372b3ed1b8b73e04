//! Link options for the `linkymon` binary that keep its resident memory small (README,
//! "Figures"). Only release builds on Linux get them; tests and debug builds link as usual.
//!
//! - `link/hot-text.ld` gathers the functions `linkymon run` executes at the start of the
//!   code. The kernel maps code 64 kB around each page touched, so scattered hot functions
//!   would make most of the binary resident. `scripts/hot-text.sh` regenerates it.
//! - Packed relative relocations (DT_RELR, glibc 2.36) in dynamically linked builds: the
//!   loader reads a few kB instead of 170 kB of relocation records at every start.

use std::env;

fn main() {
    println!("cargo::rerun-if-changed=build.rs");
    println!("cargo::rerun-if-changed=link/hot-text.ld");
    let target = |name: &str| env::var(format!("CARGO_CFG_TARGET_{name}")).unwrap_or_default();
    if target("OS") != "linux" || env::var("PROFILE").as_deref() != Ok("release") {
        return;
    }
    let manifest = env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    println!("cargo::rustc-link-arg-bins=-Wl,-T,{manifest}/link/hot-text.ld");

    let static_libc = target("FEATURE").split(',').any(|f| f == "crt-static");
    let relr_linker = matches!(target("ARCH").as_str(), "x86_64" | "aarch64");
    if target("ENV") == "gnu" && relr_linker && !static_libc {
        println!("cargo::rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
}
