//! Relay's adapters to the hosting side, for the provision function: [`transip`] (the hosting
//! provider, TransIP's REST API v6), [`agent`] (a shared VPS's deploy agent) and [`probe`] (a
//! tenant's health check). Each implements a port of `relay_core::ports::provision`; none
//! touches AWS (those adapters are `relay-aws`'s).

pub mod agent;
pub mod probe;
pub mod transip;

#[cfg(test)]
mod tests;
