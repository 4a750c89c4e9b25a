//! Timers in the browser: a callback every so often while a component is mounted.

/// Runs `f` every `ms` milliseconds while the calling component is mounted (browser only: on the
/// server it does nothing).
pub fn every(ms: u32, f: impl Fn() + 'static) {
    #[cfg(feature = "hydrate")]
    {
        let interval = send_wrapper::SendWrapper::new(gloo_timers::callback::Interval::new(ms, f));
        leptos::prelude::on_cleanup(move || drop(interval));
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = (ms, f);
}
