//! Where keys go: the target db of each source db and the output of each key.

/// Where the keys of a source db go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DbRoute {
    To(u64),
    /// Left out on purpose (not selected).
    Skip,
    /// Not allowed: counted, and the plan fails.
    Reject,
}

/// Decides the target db of each source db and the output of each key.
pub trait Router: Sync {
    fn outputs(&self) -> usize;
    fn db(&self, src_db: u64) -> DbRoute;
    /// The output for `key`; None when no output takes it (the plan fails).
    fn output(&self, key: &[u8]) -> Option<usize>;
    /// Whether two source dbs can land in one target db (then inputs are checked for
    /// collisions even when there is only one).
    fn joins_dbs(&self) -> bool;
}

/// `merge`'s router: one output; dbs kept, or all mapped to db 0.
pub struct MergeRouter {
    pub into_db0: bool,
}

impl Router for MergeRouter {
    fn outputs(&self) -> usize {
        1
    }
    fn db(&self, src_db: u64) -> DbRoute {
        DbRoute::To(if self.into_db0 { 0 } else { src_db })
    }
    fn output(&self, _key: &[u8]) -> Option<usize> {
        Some(0)
    }
    fn joins_dbs(&self) -> bool {
        self.into_db0
    }
}
