//! The data lake on local files: `<data dir>/lake/<table>/dt=YYYY-MM-DD/`,
//! newline-delimited JSON, one record a line, in the layout the lake has on
//! S3 (Hive-style day partitions) so the same SQL reads both.
//!
//! Each sink writes one file per table and day,
//! `part-<start millis>-<pid>.json`, opened for appending; another process,
//! or another sink in this one, writes files of its own, so no two writers
//! share a file. An `append` is written before it returns, so a query sees
//! it at once.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use purser_core::lake::LakeTable;
use purser_core::{Appended, LakeError, LakeSink};
use serde_json::Value;

/// The folder of the lake in a data directory.
pub fn lake_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("lake")
}

/// The folder of one table, holding its `dt=YYYY-MM-DD` partitions.
pub fn table_dir(data_dir: &Path, table: LakeTable) -> PathBuf {
    lake_dir(data_dir).join(table.name())
}

/// The partition a record goes to: the UTC day of its `timestamp` (RFC
/// 3339), or `today` when it has none that parses.
fn day_of(record: &Value, today: NaiveDate) -> NaiveDate {
    record
        .get("timestamp")
        .and_then(Value::as_str)
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map_or(today, |t| t.to_utc().date_naive())
}

/// The last start handed out, so two sinks of one process never share a
/// file name even when opened in the same millisecond.
static LAST_START: AtomicI64 = AtomicI64::new(0);

fn unique_start(now_ms: i64) -> i64 {
    let mut last = LAST_START.load(Ordering::Relaxed);
    loop {
        let start = now_ms.max(last + 1);
        match LAST_START.compare_exchange_weak(last, start, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => return start,
            Err(seen) => last = seen,
        }
    }
}

/// `LakeSink` on local files. Clones share the open files; appends are
/// serialized and their file I/O runs on tokio's blocking pool.
#[derive(Clone)]
pub struct LocalLakeSink {
    inner: Arc<Inner>,
}

struct Inner {
    data_dir: PathBuf,
    /// `part-<start millis>-<pid>.json`.
    file_name: String,
    files: Mutex<HashMap<(LakeTable, NaiveDate), File>>,
}

impl std::fmt::Debug for LocalLakeSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalLakeSink")
            .field("lake", &lake_dir(&self.inner.data_dir))
            .field("file_name", &self.inner.file_name)
            .finish()
    }
}

impl LocalLakeSink {
    /// A sink writing under `<data_dir>/lake/`. Nothing is created until
    /// the first append.
    pub fn new(data_dir: &Path) -> Self {
        let start = unique_start(Utc::now().timestamp_millis());
        Self {
            inner: Arc::new(Inner {
                data_dir: data_dir.to_path_buf(),
                file_name: format!("part-{start}-{}.json", std::process::id()),
                files: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// The file this sink writes for `table` and `day`.
    pub fn file_path(&self, table: LakeTable, day: NaiveDate) -> PathBuf {
        self.inner.file_path(table, day)
    }
}

impl Inner {
    fn file_path(&self, table: LakeTable, day: NaiveDate) -> PathBuf {
        table_dir(&self.data_dir, table)
            .join(format!("dt={}", day.format("%Y-%m-%d")))
            .join(&self.file_name)
    }

    /// Writes each day's lines with one write, then flushes. On an error
    /// the file is closed, so the next append opens it again (and the
    /// folder, if it was removed).
    fn write(&self, table: LakeTable, days: Vec<(NaiveDate, Vec<u8>)>) -> Result<(), LakeError> {
        let mut files = self.files.lock().unwrap_or_else(|p| p.into_inner());
        for (day, lines) in days {
            let path = self.file_path(table, day);
            let unavailable =
                |e: std::io::Error| LakeError::Unavailable(format!("{}: {e}", path.display()));
            let file = match files.entry((table, day)) {
                Entry::Occupied(o) => o.into_mut(),
                Entry::Vacant(v) => v.insert(open_part(&path).map_err(unavailable)?),
            };
            if let Err(e) = file.write_all(&lines).and_then(|()| file.flush()) {
                files.remove(&(table, day));
                return Err(unavailable(e));
            }
        }
        Ok(())
    }
}

/// Opens (creating it and its folders) a part file for appending. A file
/// that does not end a line (a write that failed half way) gets a newline
/// first, so the next record starts a line of its own.
fn open_part(path: &Path) -> std::io::Result<File> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut file = OpenOptions::new()
        .read(true)
        .append(true)
        .create(true)
        .open(path)?;
    let len = file.metadata()?.len();
    if len > 0 {
        let mut last = [0u8];
        file.seek(SeekFrom::Start(len - 1))?;
        file.read_exact(&mut last)?;
        if last[0] != b'\n' {
            file.write_all(b"\n")?;
        }
    }
    Ok(file)
}

/// The records as lines, grouped by partition day, in their order.
fn lines_by_day(records: &[Value], today: NaiveDate) -> Vec<(NaiveDate, Vec<u8>)> {
    let mut days: Vec<(NaiveDate, Vec<u8>)> = Vec::new();
    for record in records {
        let day = day_of(record, today);
        let i = match days.iter().position(|(d, _)| *d == day) {
            Some(i) => i,
            None => {
                days.push((day, Vec::new()));
                days.len() - 1
            }
        };
        let buf = &mut days[i].1;
        // A `Value` always serializes, and never with a raw newline.
        serde_json::to_writer(&mut *buf, record).expect("a JSON value serializes");
        buf.push(b'\n');
    }
    days
}

#[async_trait]
impl LakeSink for LocalLakeSink {
    async fn append(&self, table: LakeTable, records: Vec<Value>) -> Result<Appended, LakeError> {
        if records.is_empty() {
            return Ok(Appended::default());
        }
        let written = records.len();
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || {
            let days = lines_by_day(&records, Utc::now().date_naive());
            inner.write(table, days)
        })
        .await
        .map_err(|e| LakeError::Unavailable(format!("a lake write task failed: {e}")))??;
        Ok(Appended {
            written,
            dead_lettered: 0,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn lines_in(dir: &Path) -> Vec<Value> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        files
            .iter()
            .flat_map(|f| {
                let text = std::fs::read_to_string(f).unwrap();
                assert!(text.ends_with('\n'), "{}", f.display());
                text.lines()
                    .map(|l| serde_json::from_str::<Value>(l).unwrap())
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    fn partition(data_dir: &Path, table: LakeTable, day: &str) -> PathBuf {
        table_dir(data_dir, table).join(format!("dt={day}"))
    }

    fn files_in(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn folders_are_the_query_engines() {
        let d = Path::new("/tmp/.purser");
        assert_eq!(lake_dir(d), Path::new("/tmp/.purser/lake"));
        assert_eq!(
            table_dir(d, LakeTable::Invocations),
            Path::new("/tmp/.purser/lake/invocations")
        );
        assert_eq!(
            table_dir(d, LakeTable::Deployments),
            Path::new("/tmp/.purser/lake/deployments")
        );
    }

    #[test]
    fn a_record_goes_to_the_utc_day_of_its_timestamp() {
        let today: NaiveDate = "2030-01-01".parse().unwrap();
        let day = |v: Value| day_of(&v, today).to_string();
        assert_eq!(
            day(json!({"timestamp": "2026-11-21T10:00:00.000Z"})),
            "2026-11-21"
        );
        assert_eq!(
            day(json!({"timestamp": "2026-11-21T23:30:00-05:00"})),
            "2026-11-22"
        );
        assert_eq!(day(json!({"timestamp": "yesterday"})), "2030-01-01");
        assert_eq!(day(json!({"timestamp": 1_700_000_000})), "2030-01-01");
        assert_eq!(day(json!({"other": 1})), "2030-01-01");
        assert_eq!(day(json!([1, 2])), "2030-01-01");
    }

    #[tokio::test]
    async fn records_land_in_their_day_one_per_line() {
        let dir = tempfile::tempdir().unwrap();
        let sink = LocalLakeSink::new(dir.path());
        let records = vec![
            json!({"timestamp": "2001-11-21T10:00:00.000Z", "n": 1, "text": "a\nb"}),
            json!({"timestamp": "2001-11-22T00:00:00.000Z", "n": 2}),
            json!({"timestamp": "2001-11-21T23:59:59.999Z", "n": 3}),
            json!({"n": 4}),
        ];
        let appended = sink
            .append(LakeTable::Invocations, records.clone())
            .await
            .unwrap();
        assert_eq!(
            appended,
            Appended {
                written: 4,
                dead_lettered: 0
            }
        );
        let p = |day: &str| partition(dir.path(), LakeTable::Invocations, day);
        assert_eq!(
            lines_in(&p("2001-11-21")),
            vec![records[0].clone(), records[2].clone()]
        );
        assert_eq!(lines_in(&p("2001-11-22")), vec![records[1].clone()]);
        // (Days of 2001 are not today.)
        let today = Utc::now().date_naive().to_string();
        assert_eq!(lines_in(&p(&today)), vec![records[3].clone()]);
        // One file per day, named for this sink; other tables untouched.
        let name = &sink.inner.file_name;
        assert!(
            name.starts_with("part-") && name.ends_with(&format!("-{}.json", std::process::id()))
        );
        assert_eq!(files_in(&p("2001-11-21")), vec![name.clone()]);
        assert_eq!(
            sink.file_path(LakeTable::Invocations, "2001-11-22".parse().unwrap()),
            p("2001-11-22").join(name)
        );
        assert!(!table_dir(dir.path(), LakeTable::Deployments).exists());
        // Nothing to write creates nothing.
        assert_eq!(
            sink.append(LakeTable::Deployments, Vec::new())
                .await
                .unwrap(),
            Appended::default()
        );
        assert!(!table_dir(dir.path(), LakeTable::Deployments).exists());
    }

    #[tokio::test]
    async fn appends_append() {
        let dir = tempfile::tempdir().unwrap();
        let sink = LocalLakeSink::new(dir.path());
        let first = json!({"timestamp": "2026-11-21T10:00:00Z", "n": 1});
        let second = json!({"timestamp": "2026-11-21T11:00:00Z", "n": 2});
        sink.append(LakeTable::Deployments, vec![first.clone()])
            .await
            .unwrap();
        // Visible as soon as the append returns.
        let p = partition(dir.path(), LakeTable::Deployments, "2026-11-21");
        assert_eq!(lines_in(&p), vec![first.clone()]);
        sink.append(LakeTable::Deployments, vec![second.clone()])
            .await
            .unwrap();
        assert_eq!(lines_in(&p), vec![first, second]);
        assert_eq!(files_in(&p).len(), 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_appends_lose_and_tear_no_line() {
        let dir = tempfile::tempdir().unwrap();
        let sink = LocalLakeSink::new(dir.path());
        // Long lines, so a torn write would show.
        let padding = "x".repeat(4_000);
        let tasks: Vec<_> = (0..32)
            .map(|task| {
                let (sink, padding) = (sink.clone(), padding.clone());
                tokio::spawn(async move {
                    for batch in 0..10 {
                        let records = (0..5)
                            .map(|i| {
                                let day = 21 + (task + batch + i) % 2;
                                json!({
                                    "timestamp": format!("2026-11-{day}T10:00:00Z"),
                                    "task": task, "batch": batch, "i": i, "padding": padding,
                                })
                            })
                            .collect();
                        sink.append(LakeTable::Invocations, records).await.unwrap();
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        let mut seen = std::collections::HashSet::new();
        for day in ["2026-11-21", "2026-11-22"] {
            let p = partition(dir.path(), LakeTable::Invocations, day);
            assert_eq!(files_in(&p).len(), 1);
            for line in lines_in(&p) {
                assert_eq!(line["padding"], padding.as_str());
                assert!(line["timestamp"].as_str().unwrap().starts_with(day));
                let id = (
                    line["task"].as_u64(),
                    line["batch"].as_u64(),
                    line["i"].as_u64(),
                );
                assert!(seen.insert(id), "{id:?} twice");
            }
        }
        assert_eq!(seen.len(), 32 * 10 * 5);
    }

    #[tokio::test]
    async fn a_reopened_sink_writes_a_new_file_and_keeps_the_old() {
        let dir = tempfile::tempdir().unwrap();
        let first = json!({"timestamp": "2026-11-21T10:00:00Z", "n": 1});
        let second = json!({"timestamp": "2026-11-21T11:00:00Z", "n": 2});
        let before = LocalLakeSink::new(dir.path());
        before
            .append(LakeTable::Deployments, vec![first.clone()])
            .await
            .unwrap();
        drop(before);
        let after = LocalLakeSink::new(dir.path());
        after
            .append(LakeTable::Deployments, vec![second.clone()])
            .await
            .unwrap();
        let p = partition(dir.path(), LakeTable::Deployments, "2026-11-21");
        let names = files_in(&p);
        assert_eq!(names.len(), 2);
        assert_eq!(names[1], after.inner.file_name);
        // Names sort by start, so reading them in order reads in order.
        assert_eq!(lines_in(&p), vec![first.clone(), second]);
        assert_eq!(lines_in_file(&p.join(&names[0])), vec![first]);
    }

    #[tokio::test]
    async fn a_torn_file_gets_its_line_ended_before_more_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let sink = LocalLakeSink::new(dir.path());
        let path = sink.file_path(LakeTable::Invocations, "2026-11-21".parse().unwrap());
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, "{\"n\":0}\n{\"n\":").unwrap();
        sink.append(
            LakeTable::Invocations,
            vec![json!({"timestamp": "2026-11-21T10:00:00Z", "n": 1})],
        )
        .await
        .unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[..2], ["{\"n\":0}", "{\"n\":"]);
        assert_eq!(
            serde_json::from_str::<Value>(lines[2]).unwrap(),
            json!({"timestamp": "2026-11-21T10:00:00Z", "n": 1})
        );
        assert_eq!((lines.len(), text.ends_with('\n')), (3, true));
    }

    #[tokio::test]
    async fn an_unwritable_lake_is_unavailable_and_names_the_path() {
        let dir = tempfile::tempdir().unwrap();
        // A file where the lake folder should be.
        std::fs::write(lake_dir(dir.path()), "not a folder").unwrap();
        let sink = LocalLakeSink::new(dir.path());
        let err = sink
            .append(
                LakeTable::Invocations,
                vec![json!({"timestamp": "2026-11-21T10:00:00Z"})],
            )
            .await
            .unwrap_err();
        let LakeError::Unavailable(message) = err;
        assert!(
            message.contains(&lake_dir(dir.path()).display().to_string()),
            "{message}"
        );
        // Once the folder can be made, the same sink writes.
        std::fs::remove_file(lake_dir(dir.path())).unwrap();
        sink.append(
            LakeTable::Invocations,
            vec![json!({"timestamp": "2026-11-21T10:00:00Z"})],
        )
        .await
        .unwrap();
    }

    fn lines_in_file(file: &Path) -> Vec<Value> {
        std::fs::read_to_string(file)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    /// The LakeSink port's contract (`purser_contract::lake_sink`), on a
    /// lake in a fresh directory, read back from its partitions' files. The
    /// local lake takes records of any size and has no dead letters.
    mod contract {
        use purser_contract::lake_sink::{Fixture, Observer};

        use super::*;

        struct Files(PathBuf);

        impl Observer for Files {
            async fn records(&self, table: LakeTable) -> Vec<Value> {
                let dir = table_dir(&self.0, table);
                if !dir.exists() {
                    return Vec::new();
                }
                files_in(&dir)
                    .iter()
                    .flat_map(|day| {
                        assert!(day.starts_with("dt="), "{day}");
                        lines_in(&dir.join(day))
                    })
                    .collect()
            }

            async fn dead_letters(&self, _table: LakeTable) -> Vec<Value> {
                Vec::new()
            }
        }

        async fn fresh() -> Option<Fixture<Files>> {
            let dir = tempfile::tempdir().unwrap();
            let sink = LocalLakeSink::new(dir.path());
            let files = Files(dir.path().to_owned());
            Some(Fixture::new(Arc::new(sink), files).keeping(dir))
        }

        purser_contract::lake_sink_contract!(fresh);
    }
}
