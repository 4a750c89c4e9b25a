//! Herald: webhook delivery for loyalty and incentive programs.
//!
//! The root crate holds the domain (`domain`), which compiles for the browser too so the console's
//! wizard validates with exactly the code the server runs. Behind the `server` feature sit the
//! storage layer (`store`) and the delivery engine (`delivery`); neither knows about HTTP routes or
//! the UI, which live in the `app` and `server` crates.

pub mod domain;

#[cfg(feature = "server")]
pub mod auth;
#[cfg(feature = "server")]
pub mod delivery;

#[cfg(feature = "server")]
pub mod store;
