//! Log set-up: human-readable text by default, JSON lines when configured.

use crate::config::LogSettings;
use tracing_subscriber::{fmt, EnvFilter};

pub fn init(settings: &LogSettings) {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&settings.filter))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = fmt().with_env_filter(filter).with_target(false);
    // `try_init` fails only when a subscriber is already set (tests): fine.
    if settings.format.eq_ignore_ascii_case("json") {
        let _ = builder.json().try_init();
    } else {
        let _ = builder.try_init();
    }
}
