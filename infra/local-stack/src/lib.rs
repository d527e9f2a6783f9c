//! The parts of the local stack that its tests share with it: forwarding a request to the
//! emulator (the IAM gate and the tests' fault proxy both do it), and the hosting stand-in
//! (TransIP's API, deploy agents and tenants' health) the provision function talks to. The stack itself is the
//! `relay-local` binary (`main.rs`).

pub mod forward;
pub mod hosting;
