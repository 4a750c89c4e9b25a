//! Reusable pieces of the console's screens.

pub mod copy;
#[cfg(feature = "hydrate")]
pub mod enhance;
pub mod filters;
pub mod form;
pub mod insights;
pub mod layout;
#[cfg(feature = "hydrate")]
pub mod live;
pub mod program;
pub mod returned;
pub mod send_test;
pub mod session;
pub mod snippets;
pub mod status;
pub mod time;
pub mod timer;
pub mod toggle;
pub mod wizard;
