//! Reusable pieces of the console's screens.

pub mod layout;
pub mod send_test;
pub mod status;
pub mod time;
pub mod toggle;
pub mod wizard;
