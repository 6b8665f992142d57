//! A 128 KiB stack instead of Rust's default 1 MiB for WebAssembly.
//!
//! Every call runs in a fresh instance, and after each call the host scans
//! the instance's whole linear memory for the pages the call wrote (to
//! reset them): the smaller the initial memory, the cheaper every call. The
//! module's deepest use of the stack is parsing its JSON configuration at
//! load (serde_json, nesting of a few levels), far below 128 KiB; running
//! out of stack traps, which fails that one call cleanly.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    if std::env::var("CARGO_CFG_TARGET_ARCH").as_deref() == Ok("wasm32") {
        println!("cargo:rustc-link-arg-cdylib=-zstack-size=131072");
    }
}
