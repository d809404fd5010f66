//! Structured logs with `tracing`. Privacy rule: log ids, routes and outcomes — never names,
//! ID numbers, clinical values or passwords (RELIABILITY.md 25).

use tracing_subscriber::EnvFilter;

/// Install the global subscriber (`RUST_LOG` / `MCH_LOG` filter, text or JSON lines on stderr).
pub fn init(format: &str) {
    let filter = EnvFilter::try_from_env("MCH_LOG")
        .or_else(|_| EnvFilter::try_from_default_env())
        .unwrap_or_else(|_| EnvFilter::new("info,actix_server=warn"));
    // Template rendering at debug level dumps the page data (names, ID numbers): never log it,
    // whatever filter an operator sets.
    let filter = match "handlebars=warn".parse() {
        Ok(d) => filter.add_directive(d),
        Err(_) => filter,
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if format == "json" {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}
