//! The failure-injection seam: every persistence step asks the injector first.
//!
//! Production stores have no injector, so each check is one branch on `None`.
//! Tests pass an injector through [`crate::StoreOptions::fault_injector`] to make
//! a step fail with an I/O error (a full disk, say) or to end the process at that
//! instant and so simulate a crash.

use std::fmt;
use std::io;
use std::sync::Arc;

/// A persistence step that can be made to fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PersistStep {
    /// Appending block bytes to a pack file.
    PackAppend,
    /// `fdatasync` of a pack file (or of the packs directory).
    PackSync,
    /// Punching a freed block's range out of its pack.
    HolePunch,
    /// Removing a pack file that no live block uses.
    PackUnlink,
    /// Truncating uncommitted bytes off a pack at open.
    PackTruncate,
    /// One atomic metadata commit (`apply_batch`).
    MetadataCommit,
    /// Making committed metadata durable (`flush`).
    MetadataFlush,
}

impl PersistStep {
    /// Every step, for harnesses that visit them in turn.
    pub const ALL: &'static [PersistStep] = &[
        PersistStep::PackAppend,
        PersistStep::PackSync,
        PersistStep::HolePunch,
        PersistStep::PackUnlink,
        PersistStep::PackTruncate,
        PersistStep::MetadataCommit,
        PersistStep::MetadataFlush,
    ];

    /// The step's name in kebab case, as test harnesses print it.
    pub fn name(self) -> &'static str {
        match self {
            PersistStep::PackAppend => "pack-append",
            PersistStep::PackSync => "pack-sync",
            PersistStep::HolePunch => "hole-punch",
            PersistStep::PackUnlink => "pack-unlink",
            PersistStep::PackTruncate => "pack-truncate",
            PersistStep::MetadataCommit => "metadata-commit",
            PersistStep::MetadataFlush => "metadata-flush",
        }
    }
}

impl fmt::Display for PersistStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Decides, before each persistence step, whether it fails.
///
/// Returning `Err` makes the step fail with that error as if the operating system
/// had returned it; the injector may also end the process to simulate a crash.
pub trait FaultInjector: Send + Sync + fmt::Debug {
    /// Called before `step` runs.
    fn before(&self, step: PersistStep) -> io::Result<()>;
}

/// The optional injector shared by the metadata and pack layers.
#[derive(Debug, Clone, Default)]
pub(crate) struct Faults(Option<Arc<dyn FaultInjector>>);

impl Faults {
    pub(crate) fn new(injector: Option<Arc<dyn FaultInjector>>) -> Self {
        Faults(injector)
    }

    pub(crate) fn check(&self, step: PersistStep) -> io::Result<()> {
        match &self.0 {
            Some(injector) => injector.before(step),
            None => Ok(()),
        }
    }
}
