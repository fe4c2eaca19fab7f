//! The message log: SQLite room messages are appended to a file of our
//! own before they are delivered, and moved into the database's tables
//! behind, many at a time.
//!
//! A commit of a few messages into SQLite's tables costs 18–34 µs of CPU
//! a message (its B-tree pages, its log's pages, a trip to sqlx's
//! thread); a thousand at a time cost 9 (bench/notes.md, "The cost of the
//! store"). An append to this log is one `write` for the whole batch, and
//! it is all the durability promise needs: what `write` returned is in the
//! kernel's page cache, so a `kill -9` loses none of it, and the log is
//! synced to disk with SQLite's (every `--sync-every`). The writer then
//! moves what the log holds into the tables, thousands of rows at a
//! time, when a second's worth is waiting, and before anything else it writes
//! (which may read those messages), so the tables are always what they
//! would have been; readers of room messages ask for the same first
//! (`Store::settled`).
//!
//! The log is two files beside the database, `<db>-messages-0` and `-1`:
//! one line a record, `<number> <JSON array of rows>`, the rows in
//! `json_rows`' shape. Meta `messages_applied` is the highest record moved
//! into the tables, set in the transaction that moves it, so a record is
//! moved exactly once whatever stops the server. The writer appends to
//! one file until it passes [`SWITCH_AT`] bytes; then, once every record
//! of the other has been moved (and the database's own log synced), it
//! empties the other and appends there. At startup, [`Journal::recover`]
//! moves what both files hold past the mark, and a record cut short by a
//! crash (the one being written: never acknowledged) is dropped.

use std::collections::VecDeque;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::Context as _;
use sqlx::sqlite::SqliteConnection;
use tokio::time::Instant;

/// A file is given up for the other past this size.
const SWITCH_AT: u64 = 4 << 20;

/// Most rows, and bytes of them, waiting to be moved into the tables:
/// past either, messages are committed into the tables directly (and
/// fail, as they would, while the database does).
const MOST_ROWS: usize = 64 * 1024;
const MOST_BYTES: usize = 16 << 20;

/// The meta key of the highest record moved into the tables.
pub const APPLIED: &str = "messages_applied";

/// A row of a record, for checking a record read back.
type Row = (
    String,
    u64,
    String,
    String,
    u64,
    Option<String>,
    Option<u64>,
);

/// The log's files of the database at `db`.
pub fn files(db: &Path) -> [PathBuf; 2] {
    [0, 1].map(|n| {
        let mut name = db.as_os_str().to_owned();
        name.push(format!("-messages-{n}"));
        PathBuf::from(name)
    })
}

/// Records not yet moved into the tables, oldest first.
#[derive(Debug, Default)]
struct Waiting {
    /// (number, rows as a JSON array, how many rows).
    records: VecDeque<Record>,
    /// Rows waiting, shared with the store's readers.
    rows: Arc<AtomicUsize>,
    /// When each record waiting was appended, in the same order.
    appended: VecDeque<Instant>,
    /// The bytes of the records' rows.
    bytes: usize,
}

/// A record of the log: its number, its rows (a JSON array), how many.
type Record = (u64, String, usize);

impl Waiting {
    fn new(records: Vec<Record>) -> Waiting {
        let rows = records.iter().map(|r| r.2).sum();
        let now = Instant::now();
        Waiting {
            appended: records.iter().map(|_| now).collect(),
            bytes: records.iter().map(|r| r.1.len()).sum(),
            records: records.into(),
            rows: Arc::new(AtomicUsize::new(rows)),
        }
    }

    /// Up to about `most` rows (whole records, at least one) as one JSON
    /// array; `None` if none wait.
    fn batch(&self, most: usize, most_bytes: usize) -> Option<Batch> {
        let mut rows = String::from("[");
        let mut count = 0;
        let mut upto = None;
        for (number, record, n) in &self.records {
            if upto.is_some() && (count + n > most || rows.len() + record.len() > most_bytes) {
                break;
            }
            if upto.is_some() {
                rows.push(',');
            }
            // A record is a JSON array: its rows without the brackets.
            rows.push_str(&record[1..record.len() - 1]);
            count += n;
            upto = Some(*number);
        }
        rows.push(']');
        upto.map(|upto| Batch { upto, rows, count })
    }

    /// The records up to `upto` are in the tables.
    fn applied(&mut self, upto: u64) {
        while let Some((number, rows, count)) = self.records.front() {
            if *number > upto {
                break;
            }
            self.rows.fetch_sub(*count, Ordering::Relaxed);
            self.bytes -= rows.len();
            self.records.pop_front();
            self.appended.pop_front();
        }
    }

    /// Moves every record into the tables, on `conn`.
    async fn apply_all(&mut self, conn: &mut SqliteConnection) -> anyhow::Result<()> {
        while let Some(batch) = self.batch(usize::MAX, usize::MAX) {
            super::writer::apply_log(conn, &batch)
                .await
                .context("cannot move the message log into the database")?;
            self.applied(batch.upto);
        }
        Ok(())
    }
}

/// The message log, owned by the writer.
#[derive(Debug)]
pub struct Journal {
    files: [PathBuf; 2],
    /// The database's own log (synced before a file is emptied).
    wal: PathBuf,
    /// The file appended to, and which it is.
    file: std::fs::File,
    current: usize,
    size: u64,
    /// The highest record in the other file.
    sealed: u64,
    /// The number of the next record.
    next: u64,
    waiting: Waiting,
}

/// A batch of records to move: everything waiting up to `upto`.
pub struct Batch {
    pub upto: u64,
    /// One JSON array of every row.
    pub rows: String,
    pub count: usize,
}

impl Journal {
    /// Opens the log of the database at `db` (a SQLite file, migrated, on
    /// `conn`; `wal`: its own log), moves what the log holds past the mark
    /// into the tables, and empties it.
    pub async fn recover(
        conn: &mut SqliteConnection,
        db: &Path,
        wal: PathBuf,
    ) -> anyhow::Result<Journal> {
        let files = files(db);
        let (records, last) = read(&files, applied(conn).await?, true)?;
        let mut waiting = Waiting::new(records);
        let rows = waiting.rows.load(Ordering::Relaxed);
        if rows > 0 {
            tracing::info!(
                messages = rows,
                "moving messages from the message log into the database"
            );
            waiting.apply_all(conn).await?;
        }
        // Everything is in the tables: both files start over.
        sync(&wal)?;
        open(&files[1], true)?;
        Ok(Journal {
            file: open(&files[0], true)?,
            files,
            wal,
            current: 0,
            size: 0,
            sealed: 0,
            next: last + 1,
            waiting,
        })
    }

    /// For a copy of the database at `db` (made after this was called):
    /// what its message log holds now, to move into the copy with
    /// [`Journal::copy_into`].
    pub fn for_copy(db: &Path) -> anyhow::Result<Vec<Record>> {
        // All of them: the copy's mark, not 0, says where they must run on
        // from ([`Journal::copy_into`] checks).
        Ok(read_past(&files(db), 0, false)?.0)
    }

    /// Moves `records` (from [`Journal::for_copy`]) past the copy's mark,
    /// contiguous from it, into the copy of a database, on `conn`.
    pub async fn copy_into(
        conn: &mut SqliteConnection,
        records: Vec<Record>,
    ) -> anyhow::Result<()> {
        let applied = applied(conn).await?;
        let records = records
            .into_iter()
            .skip_while(|r| r.0 <= applied)
            .zip(applied + 1..)
            // Past a gap: appended while the files were read, after
            // records that were not read.
            .take_while(|(r, n)| r.0 == *n)
            .map(|(r, _)| r)
            .collect();
        Waiting::new(records).apply_all(conn).await
    }

    /// Rows waiting to be moved, shared with the store's readers.
    pub fn waiting(&self) -> Arc<AtomicUsize> {
        self.waiting.rows.clone()
    }

    /// How many rows wait.
    pub fn rows(&self) -> usize {
        self.waiting.rows.load(Ordering::Relaxed)
    }

    /// The bytes of the rows waiting.
    pub fn bytes(&self) -> usize {
        self.waiting.bytes
    }

    /// When the oldest row waiting was appended.
    pub fn since(&self) -> Option<Instant> {
        self.waiting.appended.front().copied()
    }

    /// Whether `rows` more rows may wait (the log's bounds in rows and
    /// bytes).
    pub fn has_room(&self, rows: usize) -> bool {
        self.rows() + rows <= MOST_ROWS && self.waiting.bytes <= MOST_BYTES
    }

    /// Appends a record of `count` rows (a JSON array in `json_rows`'
    /// shape); once this returns, a crash of banter loses none of them.
    pub fn append(&mut self, rows: String, count: usize) -> std::io::Result<()> {
        let number = self.next;
        let mut line = Vec::with_capacity(rows.len() + 24);
        line.extend_from_slice(number.to_string().as_bytes());
        line.push(b' ');
        line.extend_from_slice(rows.as_bytes());
        line.push(b'\n');
        if let Err(e) = self.file.write_all(&line) {
            // What got written of it goes: the file ends on a whole record.
            let _ = self.file.set_len(self.size);
            return Err(e);
        }
        self.size += line.len() as u64;
        self.next += 1;
        self.waiting.bytes += rows.len();
        self.waiting.records.push_back((number, rows, count));
        self.waiting.rows.fetch_add(count, Ordering::Relaxed);
        self.waiting.appended.push_back(Instant::now());
        Ok(())
    }

    /// Up to about `most` rows, and `most_bytes` of them, of the records
    /// waiting (whole records, at least one), to move into the tables;
    /// `None` if none wait.
    pub fn batch(&self, most: usize, most_bytes: usize) -> Option<Batch> {
        self.waiting.batch(most, most_bytes)
    }

    /// The records up to `upto` are in the tables (their transaction
    /// committed).
    pub fn applied(&mut self, upto: u64) {
        self.waiting.applied(upto);
    }

    /// Whether, once the records up to `upto` are in the tables, the log
    /// should go on in its other file (past [`SWITCH_AT`], every record of
    /// the other then in the tables): the database's own log to sync
    /// first, if so.
    pub fn switch_due(&self, upto: u64) -> Option<PathBuf> {
        let moved = upto >= self.sealed
            || self
                .waiting
                .records
                .front()
                .is_none_or(|r| r.0 > self.sealed);
        (self.size >= SWITCH_AT && moved).then(|| self.wal.clone())
    }

    /// Empties the other file and appends there from now on, if
    /// [`Journal::switch_due`] still holds: call it once the database's
    /// log was synced after its records were moved.
    pub fn switch(&mut self) -> std::io::Result<()> {
        let moved = self
            .waiting
            .records
            .front()
            .is_none_or(|r| r.0 > self.sealed);
        if self.size < SWITCH_AT || !moved {
            return Ok(());
        }
        let other = 1 - self.current;
        self.file = open(&self.files[other], true)?;
        self.current = other;
        self.size = 0;
        self.sealed = self.next - 1;
        Ok(())
    }
}

/// The highest record moved into the tables of the database on `conn`.
async fn applied(conn: &mut SqliteConnection) -> sqlx::Result<u64> {
    let applied: i64 =
        sqlx::query_scalar("SELECT coalesce((SELECT value FROM meta WHERE key = $1), 0)")
            .bind(APPLIED)
            .fetch_one(&mut *conn)
            .await?;
    Ok(applied as u64)
}

/// The records of the log `files` past `applied`, in order and
/// contiguous from it, and the highest number any holds; `warn`: say
/// when a file ends in a record cut short.
fn read(files: &[PathBuf; 2], applied: u64, warn: bool) -> anyhow::Result<(Vec<Record>, u64)> {
    let (mut records, last) = read_past(files, applied, warn)?;
    // A gap means what follows was not appended after what precedes.
    let contiguous = records
        .iter()
        .zip(applied + 1..)
        .take_while(|(r, n)| r.0 == *n)
        .count();
    if contiguous < records.len() && warn {
        tracing::warn!(
            after = applied + contiguous as u64,
            "the message log has a gap; what follows it is dropped"
        );
    }
    records.truncate(contiguous);
    Ok((records, last))
}

/// Every whole record of the log's files numbered past `applied`, in
/// order, gaps and all, and the highest number found.
fn read_past(files: &[PathBuf; 2], applied: u64, warn: bool) -> anyhow::Result<(Vec<Record>, u64)> {
    let mut last = applied;
    let mut records = Vec::new();
    for path in files {
        let text = match std::fs::read(path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
        };
        let (read, cut) = parse(&text);
        if cut && warn {
            tracing::warn!(file = %path.display(), "the message log ends in a record cut short (a crash while it was written, never acknowledged); dropped");
        }
        for record in read {
            last = last.max(record.0);
            if record.0 > applied {
                records.push(record);
            }
        }
    }
    records.sort_by_key(|r| r.0);
    Ok((records, last))
}

/// Opens (creating) a log file for appending; `empty`: emptied first.
fn open(path: &Path, empty: bool) -> std::io::Result<std::fs::File> {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    if empty {
        file.set_len(0)?;
    }
    Ok(file)
}

/// Syncs a file to disk; no file is nothing to sync.
pub fn sync(path: &Path) -> std::io::Result<()> {
    match std::fs::File::open(path) {
        Ok(file) => file.sync_data(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// The whole records of a log file, and whether it ends in one cut short
/// (or anything else that is not a record, after which nothing is read).
fn parse(text: &[u8]) -> (Vec<Record>, bool) {
    let mut records = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        let Some(end) = rest.iter().position(|&b| b == b'\n') else {
            return (records, true);
        };
        let line = &rest[..end];
        rest = &rest[end + 1..];
        let Some(record) = std::str::from_utf8(line).ok().and_then(|line| {
            let (number, rows) = line.split_once(' ')?;
            let number: u64 = number.parse().ok()?;
            let count = serde_json::from_str::<Vec<Row>>(rows).ok()?.len();
            (count > 0).then(|| (number, rows.to_string(), count))
        }) else {
            return (records, true);
        };
        records.push(record);
    }
    (records, false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sqlx::Connection as _;

    /// A fresh, migrated database in a directory of its own.
    async fn database(name: &str) -> (PathBuf, SqliteConnection) {
        let dir = std::env::temp_dir().join(format!("banter-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let db = dir.join("banter.db");
        let mut conn = SqliteConnection::connect_with(&crate::store::connect_options(&db))
            .await
            .unwrap();
        crate::store::migrator(i64::MAX)
            .run(&mut conn)
            .await
            .unwrap();
        (db, conn)
    }

    /// What the writer does after a move of the log.
    fn switch(journal: &mut Journal) {
        let upto = journal.next - 1 - journal.waiting.records.len() as u64;
        if let Some(wal) = journal.switch_due(upto) {
            sync(&wal).unwrap();
            journal.switch().unwrap();
        }
    }

    fn row(room: &str, id: u64, text: &str) -> String {
        serde_json::to_string(&[(room, id, "al", text, 5, None::<&str>, None::<u64>)]).unwrap()
    }

    /// (room, id, text) of every stored message, and each room's last id.
    async fn stored(
        conn: &mut SqliteConnection,
    ) -> (Vec<(String, i64, String)>, Vec<(String, i64)>) {
        (
            sqlx::query_as("SELECT room, id, text FROM messages ORDER BY seq")
                .fetch_all(&mut *conn)
                .await
                .unwrap(),
            sqlx::query_as("SELECT name, last_id FROM rooms ORDER BY name")
                .fetch_all(&mut *conn)
                .await
                .unwrap(),
        )
    }

    #[tokio::test]
    async fn what_the_log_holds_reaches_the_tables_once_after_a_crash() {
        let (db, mut conn) = database("journal-crash").await;
        let wal = db.with_extension("db-wal");
        let mut journal = Journal::recover(&mut conn, &db, wal.clone()).await.unwrap();
        journal.append(row("#a", 1, "one"), 1).unwrap();
        journal.append(row("#b", 7, "two"), 1).unwrap();
        // The first is moved; then the server dies before the second is.
        let batch = journal.batch(1, usize::MAX).unwrap();
        assert_eq!((batch.upto, batch.count), (1, 1));
        crate::store::writer::apply_log(&mut conn, &batch)
            .await
            .unwrap();
        journal.applied(batch.upto);
        assert_eq!(journal.rows(), 1);
        journal.append(row("#a", 2, "three"), 1).unwrap();
        // A record cut short by the crash: never acknowledged.
        std::fs::OpenOptions::new()
            .append(true)
            .open(&files(&db)[0])
            .unwrap()
            .write_all(b"4 [[\"#a\",3,\"al\",\"cu")
            .unwrap();
        drop(journal);

        let mut journal = Journal::recover(&mut conn, &db, wal.clone()).await.unwrap();
        let expected = (
            vec![
                ("#a".to_string(), 1, "one".to_string()),
                ("#b".to_string(), 7, "two".to_string()),
                ("#a".to_string(), 2, "three".to_string()),
            ],
            vec![("#a".to_string(), 2), ("#b".to_string(), 7)],
        );
        assert_eq!(stored(&mut conn).await, expected);
        assert_eq!(journal.rows(), 0);
        assert_eq!(
            std::fs::metadata(&files(&db)[0]).unwrap().len(),
            0,
            "emptied"
        );
        // Numbers go on past every whole record seen (the cut one was
        // never acknowledged).
        journal.append(row("#a", 3, "four"), 1).unwrap();
        let text = std::fs::read_to_string(&files(&db)[0]).unwrap();
        assert!(text.starts_with("4 "), "{text}");
        drop(journal);
        Journal::recover(&mut conn, &db, wal).await.unwrap();
        let (messages, _) = stored(&mut conn).await;
        assert_eq!(messages.len(), 4);
        assert_eq!(messages[3].2, "four");
    }

    #[tokio::test]
    async fn the_log_moves_to_its_other_file_once_the_first_is_in_the_tables() {
        let (db, mut conn) = database("journal-switch").await;
        let wal = db.with_extension("db-wal");
        let mut journal = Journal::recover(&mut conn, &db, wal.clone()).await.unwrap();
        let text = "x".repeat(64 * 1024);
        let mut id = 0;
        while journal.size < SWITCH_AT {
            id += 1;
            journal.append(row("#a", id, &text), 1).unwrap();
        }
        // Nothing of file 1 waits: the switch may come at once.
        switch(&mut journal);
        assert_eq!(journal.current, 1);
        id += 1;
        journal.append(row("#a", id, "in the second"), 1).unwrap();
        // File 0 is full again only with its records still waiting: no
        // switch back until they are in the tables.
        while journal.size < SWITCH_AT {
            id += 1;
            journal.append(row("#a", id, &text), 1).unwrap();
        }
        switch(&mut journal);
        assert_eq!(journal.current, 1, "file 0's records wait");
        let first = journal.batch(usize::MAX, usize::MAX).unwrap();
        crate::store::writer::apply_log(&mut conn, &first)
            .await
            .unwrap();
        journal.applied(first.upto);
        id += 1;
        journal.append(row("#a", id, "after"), 1).unwrap();
        switch(&mut journal);
        assert_eq!(journal.current, 0);
        id += 1;
        journal.append(row("#a", id, "last"), 1).unwrap();
        drop(journal);
        Journal::recover(&mut conn, &db, wal).await.unwrap();
        let (messages, rooms) = stored(&mut conn).await;
        assert_eq!(
            messages.iter().map(|m| m.1).collect::<Vec<_>>(),
            (1..=id as i64).collect::<Vec<_>>()
        );
        assert_eq!(rooms, [("#a".to_string(), id as i64)]);
    }

    /// What a backup of the database at `db` holds: as [`stored`].
    async fn backed_up(db: &Path) -> (Vec<(String, i64, String)>, Vec<(String, i64)>) {
        let copy = db.with_file_name("copy.db");
        crate::store::backup_file(db, &copy).await.unwrap();
        let mut copied = SqliteConnection::connect_with(&crate::store::connect_options(&copy))
            .await
            .unwrap();
        stored(&mut copied).await
    }

    #[tokio::test]
    async fn a_backup_holds_what_the_log_holds() {
        let (db, mut conn) = database("journal-backup").await;
        let wal = db.with_extension("db-wal");
        let mut journal = Journal::recover(&mut conn, &db, wal).await.unwrap();
        journal.append(row("#a", 1, "in the tables"), 1).unwrap();
        let batch = journal.batch(usize::MAX, usize::MAX).unwrap();
        crate::store::writer::apply_log(&mut conn, &batch)
            .await
            .unwrap();
        journal.applied(batch.upto);
        journal.append(row("#a", 2, "in the log"), 1).unwrap();
        let (messages, rooms) = backed_up(&db).await;
        assert_eq!(
            messages.iter().map(|m| m.2.as_str()).collect::<Vec<_>>(),
            ["in the tables", "in the log"]
        );
        assert_eq!(rooms, [("#a".to_string(), 2)]);
        // The original's tables did not change.
        assert_eq!(stored(&mut conn).await.0.len(), 1);
    }

    #[tokio::test]
    async fn a_backup_holds_what_the_log_holds_after_a_restart() {
        let (db, mut conn) = database("journal-backup-restart").await;
        let wal = db.with_extension("db-wal");
        let mut journal = Journal::recover(&mut conn, &db, wal.clone()).await.unwrap();
        journal.append(row("#a", 1, "before"), 1).unwrap();
        drop(journal);
        // Started again: the log's records now start past 1.
        let mut journal = Journal::recover(&mut conn, &db, wal).await.unwrap();
        journal.append(row("#a", 2, "in the log"), 1).unwrap();
        let (messages, rooms) = backed_up(&db).await;
        assert_eq!(
            messages.iter().map(|m| m.2.as_str()).collect::<Vec<_>>(),
            ["before", "in the log"]
        );
        assert_eq!(rooms, [("#a".to_string(), 2)]);
    }

    #[test]
    fn a_record_cut_short_ends_what_is_read() {
        let text = b"1 [[\"#a\",1,\"al\",\"hi\",5,null,null]]\n\
                     2 [[\"#a\",2,\"al\",\"yo\",6,\"al\",1],[\"#b\",1,\"bo\",\"x\",7,null,null]]\n\
                     3 [[\"#a\",3,\"al\",\"cut";
        let (records, cut) = parse(text);
        assert!(cut);
        assert_eq!(
            records.iter().map(|r| (r.0, r.2)).collect::<Vec<_>>(),
            [(1, 1), (2, 2)]
        );
        let whole = text.iter().rposition(|&b| b == b'\n').unwrap() + 1;
        let (records, cut) = parse(&text[..whole]);
        assert!(!cut, "ends on a whole record");
        assert_eq!(records.len(), 2);
        let (records, cut) = parse(b"1 [[\"#a\",1,\"al\",\"hi\",5,null,null]]\n\0\0\0\0\n");
        assert!(cut, "zeros after a power cut are not a record");
        assert_eq!(records.len(), 1);
    }
}
