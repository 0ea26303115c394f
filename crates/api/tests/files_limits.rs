//! The file source's size limits and symlink loops.

use std::fs;
use std::io::Write as _;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ferrolb_api::source::files::{
    load_file_limited, load_paths, load_paths_limited, scan, watch_paths, Limits, LoadError,
    Loaded, WatchOptions,
};
use ferrolb_api::source::Resources;

const DEADLINE: Duration = Duration::from_secs(20);

fn svc(name: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Service\nmetadata: {{name: {name}, namespace: default}}\nspec: {{type: LoadBalancer}}\n"
    )
}

fn rename_into(dir: &Path, name: &str, text: &str) {
    let tmp = dir.join(format!(".{name}.tmp"));
    fs::write(&tmp, text).unwrap();
    fs::rename(&tmp, dir.join(name)).unwrap();
}

async fn next(rx: &mut tokio::sync::mpsc::Receiver<Loaded>) -> Loaded {
    tokio::time::timeout(DEADLINE, rx.recv())
        .await
        .expect("a load result within the deadline")
        .expect("watcher still running")
}

fn limits(file: u64, dir: u64) -> Limits {
    Limits {
        max_file_bytes: file,
        max_dir_bytes: dir,
    }
}

#[test]
fn a_file_over_the_limit_is_an_error_naming_it_and_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    let small = svc("small");
    fs::write(dir.path().join("a.yaml"), &small).unwrap();
    let big = format!("{}# {}\n", svc("big"), "x".repeat(1000));
    fs::write(dir.path().join("b.yaml"), &big).unwrap();
    let err = load_paths_limited(&[dir.path()], &limits(500, 1 << 20)).unwrap_err();
    match &err {
        LoadError::FileTooLarge { path, len, limit } => {
            assert_eq!(path, &dir.path().join("b.yaml"));
            assert_eq!(*len, big.len() as u64);
            assert_eq!(*limit, 500);
        }
        other => panic!("expected FileTooLarge, got {other:?}"),
    }
    let text = err.to_string();
    assert!(text.contains("b.yaml") && text.contains("500"), "{text}");
    // Exactly at the limit is allowed.
    let at = limits(big.len() as u64, 1 << 20);
    assert_eq!(
        load_paths_limited(&[dir.path()], &at)
            .unwrap()
            .services
            .len(),
        2
    );
}

#[test]
fn files_adding_up_over_the_directory_limit_are_an_error() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["a", "b", "c"] {
        fs::write(dir.path().join(format!("{name}.yaml")), svc(name)).unwrap();
    }
    let one = svc("a").len() as u64;
    let err = load_paths_limited(&[dir.path()], &limits(1 << 20, 2 * one + 1)).unwrap_err();
    match &err {
        LoadError::DirTooLarge {
            path,
            largest,
            total,
            limit,
        } => {
            assert_eq!(path, dir.path());
            assert_eq!(largest, &dir.path().join("c.yaml"));
            assert_eq!(*total, 3 * one);
            assert_eq!(*limit, 2 * one + 1);
        }
        other => panic!("expected DirTooLarge, got {other:?}"),
    }
    assert!(err.to_string().contains(&format!("{}", 2 * one + 1)));
    assert_eq!(
        load_paths_limited(&[dir.path()], &limits(1 << 20, 3 * one))
            .unwrap()
            .services
            .len(),
        3
    );
}

#[test]
fn reading_stops_past_the_limit_even_when_the_metadata_said_less() {
    // A file that grew after its length was checked: the read itself is bounded.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("growing.yaml");
    let text = format!("{}# {}\n", svc("s"), "x".repeat(4096));
    fs::write(&path, &text).unwrap();
    let mut res = Resources::default();
    let err = load_file_limited(&path, &mut res, &limits(100, 1 << 20)).unwrap_err();
    match err {
        LoadError::FileTooLarge {
            path: p,
            len,
            limit,
        } => {
            assert_eq!(p, path);
            assert_eq!(limit, 100);
            assert_eq!(len, 101, "read one byte past the limit, no more");
        }
        other => panic!("expected FileTooLarge, got {other:?}"),
    }
    assert!(res.services.is_empty(), "nothing parsed");
}

#[tokio::test]
async fn an_oversized_file_landing_in_the_directory_is_a_source_error_and_the_fix_reloads() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("a.yaml"), svc("one")).unwrap();
    let opts = WatchOptions {
        settle: Duration::from_millis(50),
        limits: limits(4096, 1 << 20),
        ..WatchOptions::default()
    };
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Loaded>(1);
    let _task = tokio::spawn(watch_paths(vec![dir.path().to_path_buf()], opts, tx));
    assert_eq!(next(&mut rx).await.unwrap().services.len(), 1);

    // Copied in place in pieces, as `cp` does.
    let mut f = fs::File::create(dir.path().join("big.yaml")).unwrap();
    for _ in 0..64 {
        f.write_all(&[b'#'; 1023]).unwrap();
        f.write_all(b"\n").unwrap();
    }
    drop(f);
    match next(&mut rx).await {
        Err(LoadError::FileTooLarge { path, limit, len }) => {
            assert_eq!(path, dir.path().join("big.yaml"));
            assert_eq!(limit, 4096);
            assert_eq!(len, 64 * 1024);
        }
        other => panic!("expected FileTooLarge, got {other:?}"),
    }
    fs::remove_file(dir.path().join("big.yaml")).unwrap();
    rename_into(dir.path(), "b.yaml", &svc("two"));
    assert_eq!(next(&mut rx).await.unwrap().services.len(), 2);
}

#[cfg(unix)]
#[test]
fn symlink_loops_are_skipped_and_reported() {
    use std::os::unix::fs::symlink;
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("a.yaml"), svc("one")).unwrap();
    symlink("self.yaml", dir.path().join("self.yaml")).unwrap();
    symlink("y.yaml", dir.path().join("x.yaml")).unwrap();
    symlink("x.yaml", dir.path().join("y.yaml")).unwrap();
    fs::create_dir(dir.path().join("sub")).unwrap();
    fs::write(dir.path().join("sub/b.yaml"), svc("two")).unwrap();
    symlink("..", dir.path().join("sub/up")).unwrap();
    let found = scan(&[dir.path()]).unwrap();
    assert_eq!(
        found.files,
        [dir.path().join("a.yaml"), dir.path().join("sub/b.yaml")]
    );
    let mut looped: Vec<_> = found.loops.iter().map(|l| l.path.clone()).collect();
    looped.sort();
    assert_eq!(
        looped,
        [
            dir.path().join("self.yaml"),
            dir.path().join("sub/up"),
            dir.path().join("x.yaml"),
            dir.path().join("y.yaml"),
        ]
    );
    assert_eq!(load_paths(&[dir.path()]).unwrap().services.len(), 2);
}

/// Collects what the tracing subscriber writes.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn warnings(&self, about: &str) -> usize {
        let text = String::from_utf8_lossy(&self.0.lock().unwrap()).to_string();
        text.lines()
            .filter(|l| l.contains("WARN") && l.contains("symlink loop") && l.contains(about))
            .count()
    }
}

#[cfg(unix)]
#[tokio::test]
async fn the_watcher_warns_of_a_symlink_loop_once_until_it_changes() {
    use std::os::unix::fs::symlink;
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    // The default (current-thread) runtime: the watcher logs on this thread.
    let _guard = tracing::subscriber::set_default(subscriber);

    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("a.yaml"), svc("one")).unwrap();
    symlink("self.yaml", dir.path().join("self.yaml")).unwrap();
    let opts = WatchOptions {
        settle: Duration::from_millis(20),
        ..WatchOptions::default()
    };
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Loaded>(1);
    let _task = tokio::spawn(watch_paths(vec![dir.path().to_path_buf()], opts, tx));
    assert_eq!(next(&mut rx).await.unwrap().services.len(), 1);
    assert_eq!(captured.warnings("self.yaml"), 1);

    // More loads with the loop unchanged: not said again.
    for (i, name) in ["b", "c"].iter().enumerate() {
        rename_into(dir.path(), &format!("{name}.yaml"), &svc(name));
        assert_eq!(next(&mut rx).await.unwrap().services.len(), 2 + i);
    }
    assert_eq!(captured.warnings("self.yaml"), 1);

    // The link changed (still a loop): said again, once.
    fs::remove_file(dir.path().join("self.yaml")).unwrap();
    symlink("./self.yaml", dir.path().join("self.yaml")).unwrap();
    rename_into(dir.path(), "d.yaml", &svc("d"));
    assert_eq!(next(&mut rx).await.unwrap().services.len(), 4);
    assert_eq!(captured.warnings("self.yaml"), 2);
}
