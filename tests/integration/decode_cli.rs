//! `linkymon decode` as a user runs it: the real executable, files, stdin, exit codes.

use std::io::Write;
use std::process::Stdio;

use crate::support::{TEMPO_CAPTURE, command as linkymon, fixtures_dir, root};

#[test]
fn decode_prints_one_json_line_per_frame_and_a_summary() {
    let capture = fixtures_dir().join(TEMPO_CAPTURE);
    let out = linkymon().arg("decode").arg(&capture).output().unwrap();
    assert!(out.status.success());
    let stdout = String::from_utf8(out.stdout).unwrap();
    let golden = std::fs::read_to_string(
        root().join(format!("tests/fixtures/golden/{TEMPO_CAPTURE}.jsonl")),
    )
    .unwrap();
    assert_eq!(stdout, golden);
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.starts_with("frames ok 10, groups ok 160, checksum errors 0"),
        "{stderr}"
    );
    assert_eq!(stderr.lines().count(), 1);
}

#[test]
fn decode_reads_standard_input_and_forced_mode() {
    let bytes = std::fs::read(fixtures_dir().join("std-1p-hc-enedis-tic2websocket.tic")).unwrap();
    for args in [
        &["decode"][..],
        &["decode", "-"],
        &["decode", "--mode", "standard", "-"],
    ] {
        let mut child = linkymon()
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(&bytes).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{args:?}");
        assert_eq!(
            String::from_utf8(out.stdout).unwrap().lines().count(),
            1,
            "{args:?}"
        );
    }
    let out = linkymon()
        .args(["decode", "--mode", "historic"])
        .arg(fixtures_dir().join("std-1p-hc-enedis-tic2websocket.tic"))
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(
        out.stdout.is_empty(),
        "a forced historic mode must not decode standard frames"
    );
}

#[test]
fn an_unreadable_capture_is_one_clear_line_and_exit_1() {
    let out = linkymon()
        .args(["decode", "/nonexistent/capture.tic"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("/nonexistent/capture.tic") && stderr.contains("No such file"),
        "{stderr}"
    );
}

#[test]
fn a_bad_mode_is_a_usage_error_with_exit_2() {
    let out = linkymon()
        .args(["decode", "--mode", "turbo", "x"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8(out.stderr).unwrap().contains("turbo"));
}
