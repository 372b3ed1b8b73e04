use super::*;

fn open(dir: &Path, max: u64) -> (Spool, Recovered) {
    Spool::open(dir, max).unwrap()
}

fn append_n(spool: &mut Spool, range: std::ops::Range<u32>) {
    for i in range {
        spool
            .append("linky/1/state", &format!("{{\"n\":{i}}}"))
            .unwrap();
    }
}

/// Sends everything unsent, returning the payloads' numbers.
fn drain(spool: &mut Spool) -> Vec<(u64, u32)> {
    let mut out = Vec::new();
    while let Some(r) = spool.next_unsent().unwrap() {
        let n = r.payload[5..r.payload.len() - 1].parse().unwrap();
        out.push((r.seq, n));
    }
    out
}

fn numbers(sent: &[(u64, u32)]) -> Vec<u32> {
    sent.iter().map(|&(_, n)| n).collect()
}

fn segment_count(dir: &Path) -> usize {
    segment_files(dir).unwrap().len()
}

#[test]
fn messages_come_back_in_order_and_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (mut spool, recovered) = open(dir.path(), 1 << 20);
    assert_eq!(recovered, Recovered::default());
    append_n(&mut spool, 0..50);
    spool.sync().unwrap();
    drop(spool);

    let (mut spool, recovered) = open(dir.path(), 1 << 20);
    assert_eq!(recovered.backlog, 50);
    let sent = drain(&mut spool);
    assert_eq!(numbers(&sent), (0..50).collect::<Vec<_>>());
    assert!(!spool.has_unsent());
}

#[test]
fn only_acknowledged_messages_leave_the_disk() {
    let dir = tempfile::tempdir().unwrap();
    let (mut spool, _) = open(dir.path(), 64 * 1024); // 4 KiB segments
    append_n(&mut spool, 0..200);
    let sent = drain(&mut spool);
    for &(seq, _) in &sent[..120] {
        spool.ack(seq);
    }
    spool.sync().unwrap();
    assert_eq!(spool.stats().backlog, 80);
    drop(spool);

    let (mut spool, recovered) = open(dir.path(), 64 * 1024);
    assert_eq!(recovered.backlog, 80);
    assert_eq!(numbers(&drain(&mut spool)), (120..200).collect::<Vec<_>>());
}

#[test]
fn a_lost_connection_sends_the_unacknowledged_again() {
    let dir = tempfile::tempdir().unwrap();
    let (mut spool, _) = open(dir.path(), 1 << 20);
    append_n(&mut spool, 0..10);
    let sent = drain(&mut spool);
    spool.ack(sent[0].0);
    spool.ack(sent[1].0);
    spool.ack(sent[3].0); // ahead of 2, which was lost with the connection
    spool.rewind();
    assert_eq!(numbers(&drain(&mut spool)), (2..10).collect::<Vec<_>>());
}

#[test]
fn fully_acknowledged_segments_are_deleted_and_numbering_goes_on_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (mut spool, _) = open(dir.path(), 64 * 1024);
    append_n(&mut spool, 0..300);
    assert!(segment_count(dir.path()) > 2);
    for (seq, _) in drain(&mut spool) {
        spool.ack(seq);
    }
    spool.sync().unwrap();
    assert_eq!(segment_count(dir.path()), 0);
    assert_eq!(spool.stats(), SpoolStats::default());
    drop(spool);

    let (mut spool, recovered) = open(dir.path(), 64 * 1024);
    assert_eq!(recovered.backlog, 0);
    let seq = spool.append("t", "p").unwrap();
    assert_eq!(seq, 300, "sequence numbers never go back");
}

#[test]
fn a_full_spool_drops_its_oldest_messages_and_counts_them() {
    let dir = tempfile::tempdir().unwrap();
    let max = 16 * 1024;
    let (mut spool, _) = open(dir.path(), max);
    append_n(&mut spool, 0..2000);
    let stats = spool.stats();
    assert!(stats.bytes <= max, "{stats:?}");
    assert!(stats.dropped > 1000, "{stats:?}");
    assert_eq!(stats.backlog + stats.dropped, 2000);
    let sent = numbers(&drain(&mut spool));
    assert_eq!(sent.last(), Some(&1999), "the newest are kept");
    assert!(sent.windows(2).all(|w| w[1] == w[0] + 1), "no gap");
    assert_eq!(sent.len() as u64, stats.backlog);
}

#[test]
fn a_torn_last_record_is_cut_and_the_rest_kept() {
    let dir = tempfile::tempdir().unwrap();
    let (mut spool, _) = open(dir.path(), 1 << 20);
    append_n(&mut spool, 0..20);
    spool.sync().unwrap();
    drop(spool);
    // A power cut in the middle of the last write: half a record at the end.
    let (_, path) = segment_files(dir.path()).unwrap().pop().unwrap();
    let len = fs::metadata(&path).unwrap().len();
    let record = encode_record(20, "linky/1/state", "{\"n\":20}");
    let mut file = OpenOptions::new().append(true).open(&path).unwrap();
    file.write_all(&record[..record.len() / 2]).unwrap();
    drop(file);

    let (mut spool, recovered) = open(dir.path(), 1 << 20);
    assert_eq!(
        recovered,
        Recovered {
            backlog: 20,
            torn: 1
        }
    );
    assert_eq!(fs::metadata(&path).unwrap().len(), len, "cut where it tore");
    append_n(&mut spool, 20..22);
    assert_eq!(numbers(&drain(&mut spool)), (0..22).collect::<Vec<_>>());
}

#[test]
fn a_damaged_record_ends_its_segment_only() {
    let dir = tempfile::tempdir().unwrap();
    let (mut spool, _) = open(dir.path(), 64 * 1024);
    append_n(&mut spool, 0..300);
    spool.sync().unwrap();
    drop(spool);
    // Flip a byte in the middle of the first segment.
    let (first_seq, path) = segment_files(dir.path()).unwrap().remove(0);
    assert_eq!(first_seq, 0);
    let mut bytes = fs::read(&path).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x40;
    fs::write(&path, &bytes).unwrap();

    let (mut spool, recovered) = open(dir.path(), 64 * 1024);
    assert_eq!(recovered.torn, 1);
    let sent = numbers(&drain(&mut spool));
    assert_eq!(sent[0], 0);
    assert_eq!(sent.last(), Some(&299), "later segments are untouched");
    assert!(sent.windows(2).all(|w| w[1] > w[0]), "in order: {sent:?}");
}

#[test]
fn two_daemons_cannot_share_a_spool() {
    let dir = tempfile::tempdir().unwrap();
    let (_first, _) = open(dir.path(), 1 << 20);
    let e = Spool::open(dir.path(), 1 << 20).unwrap_err();
    assert!(e.to_string().contains("another linkymon"), "{e}");
}

#[test]
fn a_message_bigger_than_the_spool_is_refused_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let (mut spool, _) = open(dir.path(), 100);
    assert!(spool.append("t", &"x".repeat(200)).is_err());
    assert_eq!(spool.stats().dropped, 1);
}

#[test]
fn appends_after_partial_acks_and_a_restart_keep_one_order() {
    let dir = tempfile::tempdir().unwrap();
    let (mut spool, _) = open(dir.path(), 64 * 1024);
    append_n(&mut spool, 0..100);
    for (seq, _) in drain(&mut spool).into_iter().take(30) {
        spool.ack(seq);
    }
    spool.sync().unwrap();
    drop(spool); // e.g. kill -9: nothing else runs

    let (mut spool, _) = open(dir.path(), 64 * 1024);
    append_n(&mut spool, 100..150);
    assert_eq!(numbers(&drain(&mut spool)), (30..150).collect::<Vec<_>>());
}

#[test]
fn a_sync_is_needed_after_writes_and_acknowledgements_only() {
    let dir = tempfile::tempdir().unwrap();
    let (mut spool, _) = open(dir.path(), 1 << 20);
    assert!(!spool.needs_sync(), "a fresh spool");
    append_n(&mut spool, 0..3);
    assert!(spool.needs_sync(), "records written");
    spool.sync().unwrap();
    assert!(!spool.needs_sync(), "synced");
    let sent = drain(&mut spool);
    assert!(!spool.needs_sync(), "sending changes nothing on disk");
    spool.ack(sent[0].0);
    assert!(spool.needs_sync(), "an acknowledgement to save");
    spool.sync().unwrap();
    assert!(!spool.needs_sync(), "saved");
}
