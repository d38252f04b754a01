//! Links the unwinder (libgcc_eh) into the `dshare` binary, so that starting it loads
//! one shared library fewer (libgcc_s.so.1).
//!
//! `dshare send` is a short process whose latency is mostly start-up, and every shared
//! library costs at start: finding, mapping and relocating it, and libgcc_s's
//! constructor asks the CPU for its features (`cpuid`, which traps to the hypervisor on
//! a virtual machine). Linking the unwinder statically is what `gcc -static-libgcc`
//! does for C++ programs; Rust's panics and backtraces use it the same way. Measured on
//! the benchmark machine: about 0.1 ms of a 1.5 ms send.
//!
//! Only for the binary (tests and benchmarks run that binary), and only where it is
//! known to work: a native Linux/glibc build that is not already static, with a C
//! compiler that knows where libgcc_eh.a is. Anywhere else nothing changes.

use std::env;
use std::path::PathBuf;
use std::process::Command;

fn main() {
    println!("cargo::rerun-if-changed=build.rs");
    println!("cargo::rerun-if-env-changed=CC");
    if let Some(unwinder) = static_unwinder() {
        // The whole archive: its definitions then take precedence over libgcc_s's,
        // and the linker (`--as-needed`, as rustc asks) leaves libgcc_s out.
        println!(
            "cargo::rustc-link-arg-bins=-Wl,--whole-archive,{},--no-whole-archive",
            unwinder.display()
        );
    }
}

/// The path of libgcc_eh.a when it should be linked in.
fn static_unwinder() -> Option<PathBuf> {
    let var = |name: &str| env::var(name).unwrap_or_default();
    let glibc_linux = var("CARGO_CFG_TARGET_OS") == "linux" && var("CARGO_CFG_TARGET_ENV") == "gnu";
    // A static build (crt-static) links libgcc_eh already.
    let static_build = var("CARGO_CFG_TARGET_FEATURE")
        .split(',')
        .any(|f| f == "crt-static");
    if !glibc_linux || static_build || var("HOST") != var("TARGET") {
        return None;
    }
    let cc = env::var("CC").unwrap_or_else(|_| "cc".to_string());
    let out = Command::new(cc)
        .arg("-print-file-name=libgcc_eh.a")
        .output()
        .ok()?;
    let path = PathBuf::from(String::from_utf8(out.stdout).ok()?.trim());
    // A compiler that does not know the file prints its bare name back.
    (path.is_absolute() && path.is_file()).then_some(path)
}
