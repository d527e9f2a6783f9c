//! The part of the local stack that its tests share with it: forwarding a request to the
//! emulator (the IAM gate and the tests' fault proxy both do it). The stack itself is the
//! `relay-local` binary (`main.rs`).

pub mod forward;
