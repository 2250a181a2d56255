//! The landing area on `purser up`: files under `<data-dir>/landing/`, laid
//! out as the lake bucket's keys (`metrics/account=<id>/…`, newline-
//! delimited JSON as a metric stream's Firehose writes it). A watcher
//! announces each new file as S3 announces an object to EventBridge (`aws.s3`,
//! `Object Created`, on the default bus) within a second, and the recorder
//! reads it back through [`LocalLanding`], as on AWS.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;
use purser_core::events::EventEntry;
use purser_core::ports::{Landing, LandingError, MAX_LANDED_OBJECT, METRICS_PREFIX};
use rusqlite::params;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::bus::LocalBus;
use crate::db::Db;

/// The local lake bucket's name, as the `Object Created` events say: the
/// template's logical id, which is what `!Ref LakeBucket` names locally.
pub const LOCAL_BUCKET: &str = "LakeBucket";
/// How often the watcher looks for new files.
const WATCH_EVERY: Duration = Duration::from_millis(250);

/// `<data-dir>/landing`.
pub fn landing_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("landing")
}

/// Reads landed objects from `<data-dir>/landing/<key>`.
#[derive(Debug, Clone)]
pub struct LocalLanding {
    root: PathBuf,
}

impl LocalLanding {
    pub fn new(data_dir: &Path) -> Self {
        Self {
            root: landing_dir(data_dir),
        }
    }
}

#[async_trait]
impl Landing for LocalLanding {
    async fn read(&self, key: &str) -> Result<String, LandingError> {
        if key
            .split('/')
            .any(|p| p.is_empty() || p == ".." || p == ".")
        {
            return Err(LandingError::Refused(format!("{key:?} is not a key")));
        }
        let path = self.root.join(key);
        let size = match tokio::fs::metadata(&path).await {
            Ok(m) => m.len(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(LandingError::NotFound(format!(
                    "{} is gone",
                    path.display()
                )));
            }
            Err(e) => return Err(LandingError::Unavailable(e.to_string())),
        };
        if size > MAX_LANDED_OBJECT {
            return Err(LandingError::Refused(format!(
                "{key} is {size} bytes, more than a metric stream's Firehose writes ({MAX_LANDED_OBJECT})"
            )));
        }
        let bytes = tokio::fs::read(&path)
            .await
            .map_err(|e| LandingError::Unavailable(e.to_string()))?;
        String::from_utf8(bytes).map_err(|_| LandingError::Refused(format!("{key} is not UTF-8")))
    }
}

/// Every file under `root`'s `metrics/` (its key and size), skipping what
/// is being written (dot files, as writers name them until renamed).
fn files(root: &Path) -> Vec<String> {
    let mut keys = Vec::new();
    let mut stack = vec![root.join("metrics")];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let hidden = entry.file_name().to_string_lossy().starts_with('.');
            match entry.file_type() {
                Ok(t) if t.is_dir() => stack.push(path),
                Ok(t) if t.is_file() && !hidden => {
                    if let Ok(rel) = path.strip_prefix(root) {
                        let key: Vec<String> = rel
                            .components()
                            .map(|c| c.as_os_str().to_string_lossy().into_owned())
                            .collect();
                        keys.push(key.join("/"));
                    }
                }
                _ => {}
            }
        }
    }
    keys.sort();
    keys
}

/// Announces each new landed file once, until `stop`.
pub async fn watch(db: Db, bus: LocalBus, data_dir: PathBuf, stop: CancellationToken) {
    let root = landing_dir(&data_dir);
    // What was announced, before this run too: each look then writes to the
    // database only for files it has not seen, not for every file it lists.
    let mut seen: HashSet<String> = db
        .call(|conn| {
            let mut stmt = conn.prepare("SELECT key FROM sim_landed")?;
            stmt.query_map([], |r| r.get(0))?.collect()
        })
        .await
        .unwrap_or_else(|e| {
            tracing::warn!(error = %e, "the landing watcher cannot read what it announced");
            HashSet::new()
        });
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(WATCH_EVERY) => {}
        }
        let root2 = root.clone();
        let found = tokio::task::spawn_blocking(move || files(&root2))
            .await
            .unwrap_or_default();
        for key in found {
            if !key.starts_with(METRICS_PREFIX) || seen.contains(&key) {
                continue;
            }
            let k = key.clone();
            let fresh = db
                .call(move |conn| {
                    conn.execute(
                        "INSERT INTO sim_landed (key) VALUES (?1) ON CONFLICT (key) DO NOTHING",
                        params![k],
                    )
                })
                .await;
            match fresh {
                Ok(1) => {
                    seen.insert(key.clone());
                }
                Ok(_) => {
                    seen.insert(key);
                    continue;
                }
                Err(e) => {
                    tracing::warn!(error = %e, key, "the landing watcher cannot record what it saw");
                    continue;
                }
            }
            let size = std::fs::metadata(root.join(&key)).map_or(0, |m| m.len());
            let detail = json!({
                "version": "0",
                "bucket": {"name": LOCAL_BUCKET},
                "object": {"key": key, "size": size},
                "reason": "PutObject",
            });
            let entry = EventEntry {
                source: Some("aws.s3".into()),
                detail_type: Some("Object Created".into()),
                detail: Some(detail.to_string()),
                resources: vec![format!("arn:aws:s3:::{LOCAL_BUCKET}")],
                event_bus_name: Some("default".into()),
                ..EventEntry::default()
            };
            if let Err(e) = bus.put_service_events(vec![entry]).await {
                tracing::warn!(error = %e, key, "a landed object was not announced");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_landed_file_is_read_by_its_key_and_nothing_outside_is() {
        let dir = tempfile::tempdir().unwrap();
        let folder = landing_dir(dir.path()).join("metrics/account=210987654321/2026/12/07");
        std::fs::create_dir_all(&folder).unwrap();
        std::fs::write(folder.join("batch-1"), "{}\n").unwrap();
        std::fs::write(folder.join(".batch-2.tmp"), "{}\n").unwrap();
        let landing = LocalLanding::new(dir.path());
        assert_eq!(
            landing
                .read("metrics/account=210987654321/2026/12/07/batch-1")
                .await
                .unwrap(),
            "{}\n"
        );
        assert!(matches!(
            landing.read("metrics/account=210987654321/nope").await,
            Err(LandingError::NotFound(_))
        ));
        assert!(matches!(
            landing.read("metrics/../../etc/passwd").await,
            Err(LandingError::Refused(_))
        ));
        assert_eq!(
            files(&landing_dir(dir.path())),
            ["metrics/account=210987654321/2026/12/07/batch-1"]
        );
    }
}
