//! The live policy: one compiled engine behind a lock, replaced whole on reload.
//!
//! Why build-then-swap: a reload parses, validates, compiles and lints the new config entirely off to the side.
//! Only a complete engine is swapped in, in one pointer store, so a request sees either the old policy or the
//! new one and never a mixture; a bad file leaves the old engine serving and returns the errors. The decision
//! cache lives inside the engine, so swapping also invalidates it.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use crate::compile::ParseCache;
use crate::engine::{Engine, Outcome, Request};
use crate::error::{ConfigError, Diagnostic};
use crate::load::LoadOptions;

/// The current engine and how to rebuild it.
#[derive(Debug)]
pub struct PolicyStore {
    current: RwLock<Arc<Engine>>,
    path: PathBuf,
    opts: LoadOptions,
    generation: AtomicU64,
    parsed: ParseCache,
    /// Held across a whole reload, so two overlapping reloads (a file watcher and SIGHUP) cannot swap in the
    /// older file last.
    reloading: Mutex<()>,
}

/// What a successful reload did.
#[derive(Debug, Clone)]
pub struct Reloaded {
    pub generation: u64,
    pub policies: usize,
    pub warnings: Vec<Diagnostic>,
}

impl PolicyStore {
    /// Loads `path`; fails if it does not load cleanly.
    pub fn open(path: &Path, opts: LoadOptions) -> Result<PolicyStore, ConfigError> {
        let parsed = ParseCache::default();
        let engine = crate::build_engine_cached(crate::load::load_file(path, &opts)?, &parsed)?;
        Ok(PolicyStore {
            current: RwLock::new(Arc::new(engine)),
            path: path.to_path_buf(),
            opts,
            generation: AtomicU64::new(1),
            parsed,
            reloading: Mutex::new(()),
        })
    }

    /// The engine serving now. Holders keep deciding with it even if a reload happens meanwhile.
    pub fn engine(&self) -> Arc<Engine> {
        // A poisoned lock still holds a complete engine: swaps are single assignments.
        self.current.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn decide(&self, req: &Request) -> Outcome {
        self.engine().decide(req)
    }

    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Re-reads the file. On any error the current engine keeps serving and the errors are returned.
    pub fn reload(&self) -> Result<Reloaded, ConfigError> {
        let _one_at_a_time = self.reloading.lock().unwrap_or_else(|p| p.into_inner());
        let engine = crate::build_engine_cached(crate::load::load_file(&self.path, &self.opts)?, &self.parsed)?;
        let policies = engine.compiled().policy_count();
        let warnings = engine.compiled().warnings.clone();
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(engine);
        let generation = self.generation.fetch_add(1, Ordering::AcqRel) + 1;
        Ok(Reloaded { generation, policies, warnings })
    }
}
