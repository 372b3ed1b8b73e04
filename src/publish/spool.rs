//! The durable store-and-forward queue for `state` messages (`mqtt.spool_dir`).
//!
//! While the broker is away, or while older messages still wait, `state` messages are appended
//! here; after reconnection they are sent in order and deleted only once the broker acknowledged
//! them (QoS 1). A restart or a power cut loses nothing that reached the disk.
//!
//! - **Files.** Append-only segments named by the sequence number of their first record
//!   (`00000000000000000042.spool`), a few per `spool_max`, so acknowledged messages go away
//!   a segment at a time and a full spool drops its oldest segment, never the newest messages.
//!   `acked` holds the first sequence number not yet acknowledged, rewritten through a rename.
//! - **Records.** `len: u32 LE`, `crc32(body): u32 LE`, then the body: `seq: u64 LE`,
//!   `topic_len: u16 LE`, the topic, the payload. A record whose length runs past the end of
//!   its file or whose checksum fails (a write torn by a power cut) ends that segment: the file
//!   is cut there, counted, and everything before it is kept.
//! - **Durability.** Records are written at once (no user-space buffer) and synced to the
//!   disk at most every [`Spool::sync`] call (once a second from the publisher), so a power cut
//!   loses at most the last second; an SD card is not synced per message.
//! - **Ownership.** `lock` is held with an advisory lock for the daemon's life: two daemons
//!   never share a spool.
//!
//! Sans async, sans clock: the publisher decides when to append, send, acknowledge and sync.

use std::collections::{BTreeSet, VecDeque};
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// Bytes before the body: its length and its checksum.
const HEADER: usize = 8;
/// Bytes of the body before the topic: the sequence number and the topic's length.
const BODY_PREFIX: usize = 10;
/// A length above this is not a record but damage (a `state` message is under 2 KiB).
const MAX_RECORD: u32 = 1 << 20;
const EXTENSION: &str = "spool";
const ACKED_FILE: &str = "acked";
const LOCK_FILE: &str = "lock";

/// One spooled message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Its place in the spool's order; acknowledgements name it.
    pub seq: u64,
    /// The MQTT topic.
    pub topic: String,
    /// The payload, as published.
    pub payload: String,
}

/// What opening a spool found on disk, for one log line at start.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Recovered {
    /// Messages waiting to be sent.
    pub backlog: u64,
    /// Records cut off because they were torn or damaged.
    pub torn: u64,
}

/// The spool's figures for `diag` and its Home Assistant entity.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SpoolStats {
    /// Bytes on disk.
    pub bytes: u64,
    /// Messages written and not yet acknowledged by the broker.
    pub backlog: u64,
    /// Messages dropped since start: the oldest when the spool was full, or the newest when
    /// the disk refused them.
    pub dropped: u64,
}

/// One segment file.
#[derive(Debug)]
struct Segment {
    first_seq: u64,
    path: PathBuf,
    bytes: u64,
    records: u64,
}

/// The spool directory, opened and locked.
#[derive(Debug)]
pub struct Spool {
    dir: PathBuf,
    max_bytes: u64,
    segment_bytes: u64,
    segments: VecDeque<Segment>,
    /// The newest segment, open for appending.
    tail: Option<File>,
    next_seq: u64,
    /// Every record below this one is acknowledged.
    acked_below: u64,
    /// Acknowledgements that arrived ahead of an older one.
    acked_ahead: BTreeSet<u64>,
    /// The acknowledgement point last written to `acked`.
    acked_saved: u64,
    /// The next record to send.
    send_seq: u64,
    reader: Option<SegmentReader>,
    dirty: bool,
    dropped: u64,
    _lock: File,
}

/// A sequential reader over one segment, positioned after its last record read.
#[derive(Debug)]
struct SegmentReader {
    first_seq: u64,
    file: BufReader<File>,
}

impl Spool {
    /// Opens (creating it if needed) the spool in `dir`, bounded to `max_bytes`; recovers what
    /// a previous run left, cutting torn records. Fails if the directory cannot be used or
    /// another process holds it.
    pub fn open(dir: &Path, max_bytes: u64) -> io::Result<(Spool, Recovered)> {
        fs::create_dir_all(dir)?;
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join(LOCK_FILE))?;
        if lock.try_lock().is_err() {
            return Err(io::Error::new(
                io::ErrorKind::WouldBlock,
                "another linkymon process is using this spool",
            ));
        }
        let acked_below = read_acked(dir)?;
        let mut recovered = Recovered::default();
        let mut segments = VecDeque::new();
        for (first_seq, path) in segment_files(dir)? {
            let (bytes, records, torn) = scan_segment(&path, first_seq)?;
            recovered.torn += torn;
            if records == 0 || first_seq + records <= acked_below {
                fs::remove_file(&path)?;
                continue;
            }
            segments.push_back(Segment {
                first_seq,
                path,
                bytes,
                records,
            });
        }
        let next_seq = segments
            .back()
            .map_or(acked_below, |s| s.first_seq + s.records)
            .max(acked_below);
        let acked_below = segments
            .front()
            .map_or(next_seq, |s| s.first_seq.max(acked_below));
        recovered.backlog = next_seq - acked_below;
        let spool = Spool {
            dir: dir.to_owned(),
            max_bytes,
            // A few segments per spool, so that dropping or deleting one is a small step.
            segment_bytes: (max_bytes / 16).clamp(4 * 1024, 1024 * 1024),
            segments,
            tail: None,
            next_seq,
            acked_below,
            acked_ahead: BTreeSet::new(),
            acked_saved: acked_below,
            send_seq: acked_below,
            reader: None,
            dirty: false,
            dropped: 0,
            _lock: lock,
        };
        Ok((spool, recovered))
    }

    /// Appends a message; returns its sequence number. When the spool is full the oldest
    /// segment is dropped first (and counted). A disk error loses this message only (counted).
    pub fn append(&mut self, topic: &str, payload: &str) -> io::Result<u64> {
        let seq = self.next_seq;
        let record = encode_record(seq, topic, payload);
        let len = record.len() as u64;
        if len > self.max_bytes || topic.len() > usize::from(u16::MAX) {
            self.dropped += 1;
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "message larger than mqtt.spool_max",
            ));
        }
        while self.bytes() + len > self.max_bytes && !self.segments.is_empty() {
            self.drop_oldest()?;
        }
        let rotate = self
            .segments
            .back()
            .is_none_or(|s| s.bytes + len > self.segment_bytes);
        if rotate || self.tail.is_none() {
            self.open_tail(rotate)?;
        }
        let tail = self.tail.as_mut().expect("open_tail sets the tail");
        if let Err(e) = tail.write_all(&record) {
            // A partial write (disk full) would leave a torn record: cut it off now.
            let segment = self.segments.back().expect("the tail has a segment");
            let _ = tail.set_len(segment.bytes);
            let _ = tail.seek(SeekFrom::End(0));
            self.dropped += 1;
            return Err(e);
        }
        let segment = self.segments.back_mut().expect("the tail has a segment");
        segment.bytes += len;
        segment.records += 1;
        self.next_seq += 1;
        self.dirty = true;
        Ok(seq)
    }

    /// The next message not yet sent on this connection, or `None` when all were.
    pub fn next_unsent(&mut self) -> io::Result<Option<Record>> {
        while self.send_seq < self.next_seq {
            let Some(index) = self.segment_of(self.send_seq) else {
                // Dropped while waiting, or cut off as damaged: skip to the next kept.
                self.send_seq = self
                    .segments
                    .iter()
                    .map(|s| s.first_seq)
                    .find(|&first| first > self.send_seq)
                    .unwrap_or(self.next_seq);
                self.reader = None;
                continue;
            };
            let segment = &self.segments[index];
            if self
                .reader
                .as_ref()
                .is_none_or(|r| r.first_seq != segment.first_seq)
            {
                self.reader = Some(SegmentReader {
                    first_seq: segment.first_seq,
                    file: BufReader::new(File::open(&segment.path)?),
                });
            }
            let reader = self.reader.as_mut().expect("set above");
            match read_record(&mut reader.file)? {
                Some(record) if record.seq == self.send_seq => {
                    self.send_seq += 1;
                    return Ok(Some(record));
                }
                Some(record) if record.seq < self.send_seq => continue,
                // A gap or the end of the file: the next segment holds the rest.
                _ => {
                    let next = self
                        .segments
                        .get(index + 1)
                        .map_or(self.next_seq, |s| s.first_seq);
                    if next <= self.send_seq {
                        self.send_seq = self.next_seq; // nothing readable is left
                    } else {
                        self.send_seq = next;
                    }
                    self.reader = None;
                }
            }
        }
        Ok(None)
    }

    /// Whether messages wait that were not sent on this connection.
    pub fn has_unsent(&self) -> bool {
        self.send_seq < self.next_seq
    }

    /// The broker acknowledged message `seq`.
    pub fn ack(&mut self, seq: u64) {
        if seq < self.acked_below {
            return;
        }
        self.acked_ahead.insert(seq);
        while self.acked_ahead.remove(&self.acked_below) {
            self.acked_below += 1;
        }
    }

    /// The connection was lost: what was sent and not acknowledged is sent again.
    pub fn rewind(&mut self) {
        self.acked_ahead.clear();
        self.send_seq = self.acked_below;
        self.reader = None;
    }

    /// Whether [`sync`](Self::sync) has something to do: records written since, or
    /// acknowledgements not saved yet.
    pub fn needs_sync(&self) -> bool {
        self.dirty || self.acked_below != self.acked_saved
    }

    /// Syncs written records to the disk, deletes fully acknowledged segments and saves the
    /// acknowledgement point. Cheap when nothing changed.
    pub fn sync(&mut self) -> io::Result<()> {
        if self.dirty {
            if let Some(tail) = &self.tail {
                tail.sync_data()?;
            }
            self.dirty = false;
        }
        if self.acked_below == self.acked_saved {
            return Ok(());
        }
        while let Some(front) = self.segments.front() {
            if front.first_seq + front.records > self.acked_below {
                break;
            }
            if self.segments.len() == 1 {
                self.tail = None; // the newest segment: the next message starts another
            }
            fs::remove_file(&front.path)?;
            self.segments.pop_front();
            self.reader = None;
        }
        crate::files::write_atomic(
            &self.dir.join(ACKED_FILE),
            self.acked_below.to_string().as_bytes(),
        )?;
        self.acked_saved = self.acked_below;
        Ok(())
    }

    /// The spool's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Bytes on disk, messages waiting, messages dropped.
    pub fn stats(&self) -> SpoolStats {
        SpoolStats {
            bytes: self.bytes(),
            backlog: self.next_seq - self.acked_below,
            dropped: self.dropped,
        }
    }

    fn bytes(&self) -> u64 {
        self.segments.iter().map(|s| s.bytes).sum()
    }

    fn segment_of(&self, seq: u64) -> Option<usize> {
        let index = self
            .segments
            .partition_point(|s| s.first_seq <= seq)
            .checked_sub(1)?;
        let s = &self.segments[index];
        (seq < s.first_seq + s.records).then_some(index)
    }

    /// Opens the newest segment for appending, or a new one.
    fn open_tail(&mut self, new_segment: bool) -> io::Result<()> {
        if new_segment {
            let path = self.dir.join(format!("{:020}.{EXTENSION}", self.next_seq));
            let file = OpenOptions::new()
                .create(true)
                .truncate(true)
                .write(true)
                .open(&path)?;
            if let Some(tail) = &self.tail {
                tail.sync_data()?; // the older segment is complete: make it durable
            }
            self.segments.push_back(Segment {
                first_seq: self.next_seq,
                path,
                bytes: 0,
                records: 0,
            });
            self.tail = Some(file);
        } else {
            let segment = self.segments.back().expect("not a new segment");
            let mut file = OpenOptions::new().write(true).open(&segment.path)?;
            file.seek(SeekFrom::Start(segment.bytes))?;
            self.tail = Some(file);
        }
        Ok(())
    }

    fn drop_oldest(&mut self) -> io::Result<()> {
        let Some(oldest) = self.segments.pop_front() else {
            return Ok(());
        };
        if self.segments.is_empty() {
            self.tail = None;
        }
        fs::remove_file(&oldest.path)?;
        let end = oldest.first_seq + oldest.records;
        let unacked = end.saturating_sub(self.acked_below.max(oldest.first_seq));
        self.dropped += unacked;
        self.acked_below = self.acked_below.max(end);
        self.acked_ahead = self.acked_ahead.split_off(&self.acked_below);
        self.send_seq = self.send_seq.max(end);
        self.reader = None;
        Ok(())
    }
}

fn encode_record(seq: u64, topic: &str, payload: &str) -> Vec<u8> {
    let body_len = BODY_PREFIX + topic.len() + payload.len();
    let mut record = Vec::with_capacity(HEADER + body_len);
    record.extend_from_slice(&(body_len as u32).to_le_bytes());
    record.extend_from_slice(&[0; 4]); // the checksum, once the body is there
    record.extend_from_slice(&seq.to_le_bytes());
    record.extend_from_slice(&(topic.len() as u16).to_le_bytes());
    record.extend_from_slice(topic.as_bytes());
    record.extend_from_slice(payload.as_bytes());
    let crc = crc32fast::hash(&record[HEADER..]);
    record[4..HEADER].copy_from_slice(&crc.to_le_bytes());
    record
}

/// Reads one record; `None` at the end of the file or at a torn or damaged record.
fn read_record(file: &mut impl Read) -> io::Result<Option<Record>> {
    let mut header = [0u8; HEADER];
    if !read_full(file, &mut header)? {
        return Ok(None);
    }
    let len = u32::from_le_bytes(header[..4].try_into().expect("4 bytes"));
    let crc = u32::from_le_bytes(header[4..].try_into().expect("4 bytes"));
    if !(BODY_PREFIX as u32..=MAX_RECORD).contains(&len) {
        return Ok(None);
    }
    let mut body = vec![0u8; len as usize];
    if !read_full(file, &mut body)? || crc32fast::hash(&body) != crc {
        return Ok(None);
    }
    let seq = u64::from_le_bytes(body[..8].try_into().expect("8 bytes"));
    let topic_len = usize::from(u16::from_le_bytes([body[8], body[9]]));
    let Some(topic) = body.get(BODY_PREFIX..BODY_PREFIX + topic_len) else {
        return Ok(None);
    };
    let (Ok(topic), Ok(payload)) = (
        std::str::from_utf8(topic),
        std::str::from_utf8(&body[BODY_PREFIX + topic_len..]),
    ) else {
        return Ok(None);
    };
    Ok(Some(Record {
        seq,
        topic: topic.to_owned(),
        payload: payload.to_owned(),
    }))
}

/// Fills `buf`; false when the file ends first (nothing or part of it was there).
fn read_full(file: &mut impl Read, buf: &mut [u8]) -> io::Result<bool> {
    match file.read_exact(buf) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(false),
        Err(e) => Err(e),
    }
}

/// Reads a segment to its last good record and cuts what follows it: (bytes, records, torn).
fn scan_segment(path: &Path, first_seq: u64) -> io::Result<(u64, u64, u64)> {
    let file = File::open(path)?;
    let size = file.metadata()?.len();
    let mut reader = BufReader::new(file);
    let (mut good, mut records) = (0u64, 0u64);
    while let Some(record) = read_record(&mut reader)? {
        if record.seq != first_seq + records {
            break;
        }
        good += (HEADER + BODY_PREFIX + record.topic.len() + record.payload.len()) as u64;
        records += 1;
    }
    let torn = u64::from(good < size);
    if torn == 1 {
        OpenOptions::new().write(true).open(path)?.set_len(good)?;
    }
    Ok((good, records, torn))
}

/// The segment files of `dir`, oldest first.
fn segment_files(dir: &Path) -> io::Result<Vec<(u64, PathBuf)>> {
    let mut files = Vec::new();
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        if path.extension().and_then(|e| e.to_str()) != Some(EXTENSION) {
            continue;
        }
        if let Some(seq) = path
            .file_stem()
            .and_then(|s| s.to_str())
            .and_then(|s| s.parse().ok())
        {
            files.push((seq, path));
        }
    }
    files.sort();
    Ok(files)
}

fn read_acked(dir: &Path) -> io::Result<u64> {
    match fs::read_to_string(dir.join(ACKED_FILE)) {
        Ok(text) => Ok(text.trim().parse().unwrap_or(0)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(0),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests;
