//! The development Redis's data directory: where it is, its lock, and the
//! persistence arguments Redis gets.

use std::path::{Path, PathBuf};

use super::DevRedisError;

/// The default data directory: `$XDG_DATA_HOME/rollcall`, else
/// `$HOME/.local/share/rollcall`, else `./.rollcall-data`.
pub fn default_data_dir() -> PathBuf {
    let non_empty = |v: &str| std::env::var_os(v).filter(|p| !p.is_empty());
    if let Some(xdg) = non_empty("XDG_DATA_HOME") {
        return PathBuf::from(xdg).join("rollcall");
    }
    if let Some(home) = non_empty("HOME") {
        return PathBuf::from(home).join(".local/share/rollcall");
    }
    PathBuf::from(".rollcall-data")
}

/// `redis-server` and its persistence arguments: an append-only file in
/// `data` (no RDB snapshots), or nothing kept at all.
pub(super) fn redis_args(data: Option<&Path>) -> Vec<String> {
    let mut args: Vec<String> = vec!["redis-server".into(), "--save".into(), String::new()];
    match data {
        Some(dir) => args.extend(
            ["--appendonly", "yes", "--appendfsync", "everysec", "--dir"]
                .map(String::from)
                .into_iter()
                .chain([dir.to_string_lossy().into_owned()]),
        ),
        None => args.extend(
            ["--appendonly", "no", "--dir"]
                .map(String::from)
                .into_iter()
                .chain([std::env::temp_dir().to_string_lossy().into_owned()]),
        ),
    }
    args
}

/// An exclusive lock on a data directory (`DIR/rollcall.lock`, `flock`),
/// held while a Redis writes in its `DIR/redis/`. Redis gets only that
/// subdirectory (a container's entrypoint may change its owner), so the
/// lock file stays the user's.
pub(super) struct DataLock {
    /// `DIR/redis`, where Redis writes.
    pub(super) redis_dir: PathBuf,
    _file: std::fs::File,
}

impl DataLock {
    pub(super) fn take(dir: &Path) -> Result<Self, DevRedisError> {
        let fail = |message: String| DevRedisError::DataDir {
            dir: dir.to_owned(),
            message,
        };
        std::fs::create_dir_all(dir).map_err(|e| fail(e.to_string()))?;
        let dir = std::fs::canonicalize(dir).map_err(|e| fail(e.to_string()))?;
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join("rollcall.lock"))
            .map_err(|e| fail(e.to_string()))?;
        if !crate::process::try_lock(&file) {
            return Err(fail(
                "in use by another rollcall server; stop it, or choose another \
                 ROLLCALL_DATA_DIR"
                    .into(),
            ));
        }
        let redis_dir = dir.join("redis");
        std::fs::create_dir_all(&redis_dir).map_err(|e| fail(e.to_string()))?;
        Ok(Self {
            redis_dir,
            _file: file,
        })
    }
}
