//! Reusable pieces of the console's screens.

pub mod layout;
pub mod status;
pub mod time;
