//! On `wasm32-wasip2` without `std`, the memory builtins the compiler emits
//! calls to (`memcpy`, `memset`, `memcmp`, ...) come from wasi-libc, which
//! `std` would link: link its static `libc.a` (shipped with the target) for
//! them. Only the objects defining those functions are taken; none imports
//! WASI, so the component still imports nothing.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let var = |k: &str| std::env::var(k).unwrap_or_default();
    let no_std = std::env::var_os("CARGO_FEATURE_STD").is_none();
    if var("CARGO_CFG_TARGET_ARCH") == "wasm32" && var("CARGO_CFG_TARGET_OS") == "wasi" && no_std {
        println!("cargo:rustc-link-lib=c");
    }
}
