//! Reload without restart: on SIGHUP, or when a watched file changes
//! (`global.server.watch_config`), the configuration is loaded and
//! resolved again, every stage that can change live is built anew, and the
//! shards move to the new [`Generation`] between two requests.
//!
//! Nothing changes unless everything builds: a file that does not parse, a
//! script that does not compile or a sink that cannot start leaves the
//! running generation as it is, logged and counted
//! (`divolte_config_reloads_total{result="failed"}`). Sinks whose plan and
//! schema are the same keep their threads, files and producers; the others
//! start anew, and the ones they replace drain and publish once every shard
//! has moved on. `global.server` (addresses, cores, limits, delivery) and
//! the duplicate memory's size take effect only after a restart; a change
//! there is reported and the rest is applied.

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use super::generation;
use crate::enrich::geo::GeoDatabase;
use crate::mapping::configured;
use crate::plan::Plan;
use crate::shard::routes::RouteTables;
use crate::shard::Runtime;
use crate::sink::Sinks;

/// How long the reload waits for every shard to move to the new generation
/// before the sinks it replaced drain anyway (a shard that does not move in
/// that time is stalled, and the watchdog deals with it).
const SWITCH_LIMIT: Duration = Duration::from_secs(10);

/// How often watched files are looked at.
const WATCH_EVERY: Duration = Duration::from_secs(1);

/// How often the reload thread looks for a SIGHUP.
const SIGNAL_POLL: Duration = Duration::from_millis(100);

/// Reloads the configuration into a running collector.
pub struct Reloader {
    path: Option<PathBuf>,
    plan: Plan,
    runtime: Arc<Runtime>,
    sinks: Arc<Mutex<Sinks>>,
    geo: Option<Arc<GeoDatabase>>,
}

impl Reloader {
    /// A reloader of the configuration at `path` (the built-in defaults when
    /// `None`) into `runtime`, which runs `plan` with `sinks`.
    pub fn new(
        path: Option<PathBuf>,
        plan: Plan,
        runtime: Arc<Runtime>,
        sinks: Arc<Mutex<Sinks>>,
        geo: Option<Arc<GeoDatabase>>,
    ) -> Self {
        Self { path, plan, runtime, sinks, geo }
    }

    /// Reloads, logs and counts the outcome.
    pub fn reload(&mut self, why: &str) {
        if !self.runtime.lifecycle.is_live() {
            return;
        }
        tracing::info!(why, "Reloading the configuration.");
        let outcome = self.try_reload();
        let registry = &self.runtime.registry;
        match outcome {
            Ok(()) => {
                registry.reloads_ok.fetch_add(1, Ordering::Relaxed);
            }
            Err(error) => {
                registry.reloads_failed.fetch_add(1, Ordering::Relaxed);
                tracing::error!(%error, "Configuration not reloaded; the running configuration stays.");
            }
        }
    }

    fn try_reload(&mut self) -> Result<(), String> {
        let config = crate::config::load(self.path.as_deref()).map_err(|e| e.to_string())?;
        let mut plan = Plan::resolve(&config)?;
        if plan.server != self.plan.server {
            tracing::warn!("Settings of divolte.global.server changed; they take effect after a restart.");
            plan.server = self.plan.server.clone();
        }
        let (old, new) = (&self.plan.enrichment, &mut plan.enrichment);
        if new.duplicate_memory_size != old.duplicate_memory_size {
            tracing::warn!("divolte.global.mapper.duplicate_memory_size changed; it takes effect after a restart.");
            new.duplicate_memory_size = old.duplicate_memory_size;
        }
        let geo = if new.ip2geo_database == old.ip2geo_database {
            self.geo.clone()
        } else {
            super::open_geo(new.ip2geo_database.as_deref()).map_err(|e| e.to_string())?
        };
        let mappings = configured::build(&plan.mappings, geo.is_some()).map_err(|e| e.to_string())?;
        let routes = RouteTables::build(&plan.server, &plan.sources, &plan.mappings)?;
        let current = self.runtime.generation();
        let schemas = generation::sink_schemas(&plan, &mappings);
        let sink_json = generation::sink_json(&schemas)?;
        // Held until the sinks left behind have drained: a shutdown that
        // starts meanwhile waits for them before the process exits.
        let sinks_lock = self.sinks.clone();
        let mut sinks = sinks_lock.lock().unwrap_or_else(|e| e.into_inner());
        let retired = sinks.reload(&plan.sinks, &schemas)?;
        let next = generation::build(generation::Parts {
            number: current.number + 1,
            plan: &plan,
            mappings,
            routes,
            geo: geo.clone(),
            duplicates: current.events.duplicates(),
            sinks: sinks.lanes(),
            sink_json,
        });
        self.runtime.install(next);
        tracing::info!(
            generation = current.number + 1,
            sinks_left = retired.len(),
            "Configuration reloaded; shards move to it between requests."
        );
        self.plan = plan;
        self.geo = geo;
        // The sinks that left drain only once no shard can send to them.
        let number = current.number + 1;
        let deadline = Instant::now() + SWITCH_LIMIT;
        while !self.runtime.all_shards_on(number) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        drop(current);
        retired.drain(Instant::now() + self.runtime.server.shutdown_timeout);
        drop(sinks);
        Ok(())
    }

    /// Starts the thread that reloads on SIGHUP and, with `watch`, when the
    /// configuration file or a mapping's schema or script file changes.
    ///
    /// # Errors
    /// The thread or the signal handler cannot be set up.
    pub fn spawn(mut self, watch: bool) -> std::io::Result<()> {
        let mut signals = signal_hook::iterator::Signals::new([signal_hook::consts::SIGHUP])?;
        std::thread::Builder::new().name("reload".into()).spawn(move || {
            let mut seen = self.stamps();
            let mut looked = Instant::now();
            loop {
                std::thread::sleep(SIGNAL_POLL);
                if signals.pending().count() > 0 {
                    self.reload("SIGHUP");
                    seen = self.stamps();
                } else if watch && looked.elapsed() >= WATCH_EVERY {
                    looked = Instant::now();
                    let now = self.stamps();
                    if now != seen {
                        self.reload("a watched file changed");
                        seen = self.stamps();
                    }
                }
            }
        })?;
        Ok(())
    }

    /// Modification times of the watched files (config, schemas, scripts).
    fn stamps(&self) -> Vec<(PathBuf, Option<SystemTime>)> {
        let mut files: Vec<&Path> = self.path.iter().map(PathBuf::as_path).collect();
        for m in &self.plan.mappings {
            files.extend(m.schema_file.as_deref());
            files.extend(m.script_file.as_deref());
        }
        files.into_iter().map(|f| (f.to_owned(), std::fs::metadata(f).and_then(|m| m.modified()).ok())).collect()
    }
}
