//! Build script shared by every Lambda binary (and the bare yardstick it is measured against):
//! link the executables position-dependent.
//!
//! A PIE makes the dynamic loader patch one relative relocation per vtable slot and static
//! pointer at every cold start: about 35,000 for ingest, roughly 0.6 M instructions, a fifth of
//! its start-up (callgrind; see the README's benchmarks). The code stays position-independent;
//! only the final link fixes the addresses, so libraries are unaffected. What it gives up is
//! address-space randomisation of the executable's own image (libc, the stack and the heap are
//! still randomised), the same trade Go makes by default on linux/amd64. Only binaries get the
//! flag: proc-macros and other shared objects are linked as before.

fn main() {
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") {
        println!("cargo:rustc-link-arg-bins=-no-pie");
    }
    println!("cargo:rerun-if-changed=../../shared/build/position_dependent.rs");
}
