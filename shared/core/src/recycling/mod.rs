//! Recycling an account for its next lease: what cleaning it means (an
//! aws-nuke configuration per account, [`nuke`]) and when it is done
//! ([`cleaning`]: two clean passes in a row, or quarantine after three
//! failed runs). The [`Cleaner`](crate::ports::Cleaner) port runs the
//! passes: CodeBuild with aws-nuke on AWS, a simulation locally.

pub mod cleaning;
pub mod nuke;
pub mod pooled;

pub use cleaning::{
    CLEAN_PASSES, CleaningProgress, CleaningRun, CleaningStatus, MAX_FAILED_RUNS, Next,
};
pub use nuke::{NukeConfigError, NukeTarget, Protected};
pub use pooled::Recycling;
