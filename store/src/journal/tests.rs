use super::*;

fn opts(segment_bytes: u64) -> Options {
    Options { segment_bytes }
}

fn payloads(n: usize) -> Vec<Vec<u8>> {
    (0..n)
        .map(|i| format!("frame {i} ").repeat(i % 7 + 1).into_bytes())
        .collect()
}

fn all(j: &Journal) -> Vec<(u64, Vec<u8>)> {
    j.frames_from(j.start())
        .unwrap()
        .map(|f| f.unwrap())
        .collect()
}

#[test]
fn frames_read_back_in_order_across_segments_and_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let (mut j, rec) = Journal::open(dir.path(), opts(200)).unwrap();
    assert_eq!(rec.cut, None);
    let mut positions = Vec::new();
    for p in payloads(40) {
        positions.push(j.append(&p).unwrap());
    }
    j.sync().unwrap();
    assert_eq!(j.synced(), j.end());
    assert!(j.segment_files().len() > 3, "small segments roll over");
    let got = all(&j);
    assert_eq!(got.iter().map(|f| f.0).collect::<Vec<_>>(), positions);
    assert_eq!(
        got.into_iter().map(|f| f.1).collect::<Vec<_>>(),
        payloads(40)
    );
    // From the middle: that frame and the rest.
    let tail: Vec<_> = j
        .frames_from(positions[17])
        .unwrap()
        .map(|f| f.unwrap().1)
        .collect();
    assert_eq!(tail, payloads(40)[17..].to_vec());
    let end = j.end();
    drop(j);
    let (j, rec) = Journal::open(dir.path(), opts(200)).unwrap();
    assert_eq!((rec.cut, j.end()), (None, end));
    assert_eq!(all(&j).len(), 40);
    assert_eq!(verify(dir.path()).unwrap(), (40, end));
}

#[test]
fn a_cut_at_any_byte_keeps_every_complete_frame_and_reports_the_cut() {
    let dir = tempfile::tempdir().unwrap();
    let (mut j, _) = Journal::open(dir.path(), Options::default()).unwrap();
    let mut ends = vec![0];
    for p in payloads(12) {
        j.append(&p).unwrap();
        ends.push(j.end());
    }
    j.sync().unwrap();
    let (_, seg) = j.segment_files().pop().unwrap();
    drop(j);
    let whole = std::fs::read(&seg).unwrap();
    for len in HEADER..=whole.len() as u64 {
        std::fs::write(&seg, &whole[..len as usize]).unwrap();
        let (j, rec) = Journal::open(dir.path(), Options::default()).unwrap();
        let pos = len - HEADER;
        let kept = ends.iter().rposition(|e| *e <= pos).unwrap();
        assert_eq!(all(&j).len(), kept, "cut at {len}");
        assert_eq!(j.end(), ends[kept]);
        match rec.cut {
            None => assert_eq!(ends[kept], pos, "a boundary cuts nothing"),
            Some(cut) => {
                assert_eq!(cut.position, ends[kept]);
                assert_eq!(cut.bytes, pos - ends[kept]);
                assert_eq!(cut.offset, HEADER + ends[kept]);
                assert_eq!(std::fs::metadata(&seg).unwrap().len(), HEADER + ends[kept]);
            }
        }
        drop(j);
    }
}

#[test]
fn appends_after_a_cut_follow_the_last_complete_frame() {
    let dir = tempfile::tempdir().unwrap();
    let (mut j, _) = Journal::open(dir.path(), Options::default()).unwrap();
    j.append(b"one").unwrap();
    j.append(b"two").unwrap();
    j.sync().unwrap();
    let (_, seg) = j.segment_files().pop().unwrap();
    drop(j);
    let len = std::fs::metadata(&seg).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&seg)
        .unwrap()
        .set_len(len - 2)
        .unwrap();
    let (mut j, rec) = Journal::open(dir.path(), Options::default()).unwrap();
    assert!(rec.cut.unwrap().to_string().contains("torn tail"));
    j.append(b"three").unwrap();
    j.sync().unwrap();
    let got: Vec<_> = all(&j).into_iter().map(|f| f.1).collect();
    assert_eq!(got, vec![b"one".to_vec(), b"three".to_vec()]);
}

#[test]
fn a_torn_checksum_at_the_tail_is_cut_but_damage_before_a_good_frame_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let (mut j, _) = Journal::open(dir.path(), Options::default()).unwrap();
    let second = {
        j.append(b"first frame").unwrap();
        j.append(b"second frame").unwrap()
    };
    j.append(b"third frame").unwrap();
    j.sync().unwrap();
    let (_, seg) = j.segment_files().pop().unwrap();
    drop(j);
    let whole = std::fs::read(&seg).unwrap();
    // The last frame's last byte garbled: a torn tail.
    let mut torn = whole.clone();
    *torn.last_mut().unwrap() ^= 0xff;
    std::fs::write(&seg, &torn).unwrap();
    let (j, rec) = Journal::open(dir.path(), Options::default()).unwrap();
    assert_eq!(all(&j).len(), 2);
    assert!(rec.cut.is_some());
    drop(j);
    // The second frame garbled, the third intact: damage, named, nothing cut.
    let mut bad = whole.clone();
    bad[(HEADER + second + FRAME_HEADER + 2) as usize] ^= 0xff;
    std::fs::write(&seg, &bad).unwrap();
    let err = Journal::open(dir.path(), Options::default()).err().unwrap();
    match &err {
        JournalError::Damaged {
            segment, offset, ..
        } => {
            assert_eq!(segment, &seg);
            assert_eq!(*offset, HEADER + second);
        }
        other => panic!("{other}"),
    }
    assert!(err.to_string().contains(&seg.display().to_string()));
    assert_eq!(std::fs::read(&seg).unwrap(), bad, "nothing cut");
    assert!(matches!(
        verify(dir.path()),
        Err(JournalError::Damaged { .. })
    ));
}

#[test]
fn damage_in_an_earlier_segment_is_reported_when_read() {
    let dir = tempfile::tempdir().unwrap();
    let (mut j, _) = Journal::open(dir.path(), opts(64)).unwrap();
    for p in payloads(10) {
        j.append(&p).unwrap();
    }
    j.sync().unwrap();
    let (_, first) = j.segment_files()[0].clone();
    drop(j);
    let mut bytes = std::fs::read(&first).unwrap();
    bytes[HEADER as usize + 9] ^= 1;
    std::fs::write(&first, &bytes).unwrap();
    let (j, _) = Journal::open(dir.path(), opts(64)).unwrap();
    let err = j.frames_from(0).unwrap().find_map(|f| f.err()).unwrap();
    assert!(
        matches!(&err, JournalError::Damaged { segment, offset: 16, .. } if *segment == first),
        "{err}"
    );
}

#[test]
fn an_outbox_drops_what_was_acknowledged_and_positions_keep_growing() {
    let dir = tempfile::tempdir().unwrap();
    let (mut j, _) = Journal::open(dir.path(), opts(100)).unwrap();
    let mut positions = Vec::new();
    for p in payloads(20) {
        positions.push(j.append(&p).unwrap());
    }
    j.sync().unwrap();
    let before = j.segment_files().len();
    let dropped = j.drop_before(positions[10]).unwrap();
    assert!(dropped > 0 && j.segment_files().len() == before - dropped);
    let left: Vec<_> = all(&j).into_iter().map(|f| f.0).collect();
    assert!(left.contains(&positions[10]) && left.len() < 20);
    let end = j.end();
    j.reset().unwrap();
    assert_eq!((j.start(), j.end(), all(&j).len()), (end, end, 0));
    drop(j);
    let (mut j, _) = Journal::open(dir.path(), opts(100)).unwrap();
    assert_eq!(j.end(), end);
    assert_eq!(j.append(b"next").unwrap(), end);
}

#[test]
fn a_missing_segment_is_damage_naming_the_one_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let (mut j, _) = Journal::open(dir.path(), opts(50)).unwrap();
    for p in payloads(10) {
        j.append(&p).unwrap();
    }
    j.sync().unwrap();
    let files = j.segment_files();
    drop(j);
    std::fs::remove_file(&files[1].1).unwrap();
    let err = Journal::open(dir.path(), opts(50)).err().unwrap();
    assert!(
        matches!(&err, JournalError::Damaged { segment, .. } if *segment == files[2].1),
        "{err}"
    );
}

#[test]
fn group_commit_syncs_outside_the_lock() {
    let dir = tempfile::tempdir().unwrap();
    let (mut j, _) = Journal::open(dir.path(), Options::default()).unwrap();
    j.append(b"a").unwrap();
    let point = j.sync_point().unwrap();
    j.append(b"b").unwrap();
    let end = point.sync().unwrap();
    j.mark_synced(end);
    assert!(j.synced() < j.end());
    j.truncate(end).unwrap();
    assert_eq!(all(&j).len(), 1);
}

#[test]
fn a_segment_whose_header_was_torn_is_started_again() {
    let dir = tempfile::tempdir().unwrap();
    let (mut j, _) = Journal::open(dir.path(), opts(20)).unwrap();
    j.append(b"a frame longer than twenty bytes").unwrap();
    j.append(b"x").unwrap();
    j.sync().unwrap();
    let (base, last) = j.segment_files().pop().unwrap();
    drop(j);
    std::fs::write(&last, b"RTN").unwrap();
    let (j, rec) = Journal::open(dir.path(), opts(20)).unwrap();
    assert_eq!((rec.cut.unwrap().bytes, j.end()), (3, base));
    assert_eq!(all(&j).len(), 1);
}

#[test]
fn a_reader_reads_frames_by_position_across_segments_while_appending() {
    let dir = tempfile::tempdir().unwrap();
    let (mut j, _) = Journal::open(dir.path(), opts(120)).unwrap();
    let reader = j.reader();
    let mut positions = Vec::new();
    for p in payloads(30) {
        let at = j.append(&p).unwrap();
        positions.push(at);
        let (back, next) = reader.read_frame(at).unwrap();
        assert_eq!((back, next), (p, j.end()));
    }
    let mut byte = [0u8; 5];
    reader
        .read_at(positions[3] + FRAME_HEADER, &mut byte)
        .unwrap();
    assert_eq!(&byte, b"frame");
    assert!(matches!(
        reader.read_frame(positions[3] + 1),
        Err(JournalError::Damaged { .. })
    ));
}

#[test]
fn a_length_damaged_before_good_frames_is_damage_not_a_tail() {
    let dir = tempfile::tempdir().unwrap();
    let (mut j, _) = Journal::open(dir.path(), Options::default()).unwrap();
    let first = j.append(b"first frame").unwrap();
    j.append(b"second frame").unwrap();
    j.sync().unwrap();
    let (_, seg) = j.segment_files().pop().unwrap();
    drop(j);
    let mut bytes = std::fs::read(&seg).unwrap();
    // The first frame's length now runs past the end of the file.
    bytes[(HEADER + first) as usize + 3] = 0x10;
    std::fs::write(&seg, &bytes).unwrap();
    let err = Journal::open(dir.path(), Options::default()).err().unwrap();
    assert!(
        matches!(err, JournalError::Damaged { offset: 16, .. }),
        "{err}"
    );
    assert_eq!(std::fs::read(&seg).unwrap(), bytes, "nothing cut");
}

#[test]
fn a_frame_written_in_place_reads_back_as_one_appended_whole() {
    let dir = tempfile::tempdir().unwrap();
    let (mut j, _) = Journal::open(dir.path(), Options::default()).unwrap();
    let a = j.append(b"whole").unwrap();
    // A capacity too small only grows the buffer.
    let b = j
        .append_with(2, |out| out.extend_from_slice(b"in place"))
        .unwrap();
    let c = j.append_with(0, |_| {}).unwrap();
    j.sync().unwrap();
    drop(j);
    let (j, rec) = Journal::open(dir.path(), Options::default()).unwrap();
    assert!(rec.cut.is_none(), "{:?}", rec.cut);
    assert_eq!(
        all(&j),
        vec![
            (a, b"whole".to_vec()),
            (b, b"in place".to_vec()),
            (c, Vec::new())
        ]
    );
    assert_eq!(b, a + FRAME_HEADER + 5);
}
