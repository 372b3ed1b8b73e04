//! `linkymon graph LOG...`: day pages and the index from daily logs, ours or the Perl
//! LinkyMonitor's, into `logger.pages_dir`. The work is [`crate::logger::backfill`]'s.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::Context;
use tracing::info;

use crate::config::Config;
use crate::logger::backfill;
pub use crate::logger::backfill::Summary;
use crate::logger::disk::{DEBIAN_DYGRAPHS, install_assets, warn_online_assets};
use crate::logger::pages::{Assets, PageSettings};
use crate::prices::Prices;

/// Builds the pages of `logs` into `logger.pages_dir`.
pub fn run(config: &Config, logs: &[PathBuf]) -> anyhow::Result<Summary> {
    // A log that is not a readable file is the user's typo: say so, rather than build nothing.
    if let Some(bad) = logs.iter().find(|log| !log.is_file()) {
        anyhow::bail!("{} is not a daily log file (YYYY-MM-DD.log)", bad.display());
    }
    let logger = &config.logger;
    let tz = logger.time_zone()?;
    let pages_dir = &logger.pages_dir;
    fs::create_dir_all(pages_dir).with_context(|| {
        format!(
            "cannot create the pages directory {} (logger.pages_dir)",
            pages_dir.display()
        )
    })?;
    let installed = install_assets(pages_dir, Path::new(DEBIAN_DYGRAPHS))
        .with_context(|| format!("cannot copy dygraphs into {}/assets", pages_dir.display()))?;
    if !installed {
        warn_online_assets();
    }
    let assets = Assets::installed_or_online(installed, "");
    let prices = Prices::new(&config.prices);
    let settings = PageSettings {
        tz: &tz,
        prices: &prices,
        meter: None,
        assets: &assets,
    };
    let summary = backfill::build_pages(logs, pages_dir, &settings)?;
    info!(
        "{} day pages and index.html in {}; {} unreadable lines skipped, {} logs without a page",
        summary.pages,
        pages_dir.display(),
        summary.unreadable,
        summary.skipped
    );
    Ok(summary)
}
