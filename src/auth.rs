//! Security primitives: sealing secrets at rest and API keys. (Console users and sessions live
//! here too as they arrive.)

pub mod api_key;
pub mod seal;
