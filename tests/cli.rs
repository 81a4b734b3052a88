//! The `switchboard` binary from outside (DESIGN §2): agent management, the
//! database, `check`, and `serve` with its listening line, health check,
//! configuration precedence and clean exit on SIGTERM.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use switchboard::config::Setting;
use switchboard::store::testing::TempDir;

const BIN: &str = env!("CARGO_BIN_EXE_switchboard");

/// The binary in `dir`, with no setting inherited from the test's
/// environment; `dir/ivr-flows` and `dir/sounds` hold copies of the shipped
/// demo flows and prompts so `serve` finds its default folders (it refuses
/// flows whose sounds are missing).
fn switchboard(dir: &Path) -> Command {
    let flows = dir.join("ivr-flows");
    if !flows.exists() {
        let shipped = Path::new(env!("CARGO_MANIFEST_DIR"));
        copy_dir(&shipped.join("ivr-flows"), &flows);
        copy_dir(&shipped.join("sounds"), &dir.join("sounds"));
    }
    let mut cmd = Command::new(BIN);
    cmd.current_dir(dir).env("RUST_LOG", "info");
    cmd.env_remove("SWITCHBOARD_CONFIG");
    for s in Setting::ALL {
        cmd.env_remove(s.env());
    }
    cmd
}

/// Copies the folder `from` (when it exists) into `to`, recursively.
fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create dir");
    let Ok(entries) = std::fs::read_dir(from) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            copy_dir(&path, &to.join(entry.file_name()));
        } else {
            std::fs::copy(&path, to.join(entry.file_name())).expect("copy file");
        }
    }
}

fn run(cmd: &mut Command) -> Output {
    cmd.output().expect("run switchboard")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn db_url(dir: &Path) -> String {
    format!("sqlite://{}", dir.join("agents.db").display())
}

#[test]
fn agent_round_trip_with_database_url_flag() {
    let dir = TempDir::new("cli").unwrap();
    let url = db_url(dir.path());
    let db = ["--database-url", url.as_str()];

    let out = run(switchboard(dir.path())
        .args([
            "agent",
            "add",
            "alice",
            "--password",
            "s3cret",
            "--name",
            "Alice A.",
        ])
        .args(["--skills", "support=5,sales=2", "--extension", "1001"])
        .args(db));
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("added agent alice"));

    let out = run(switchboard(dir.path()).args(["agent", "list"]).args(db));
    assert!(out.status.success(), "{}", text(&out.stderr));
    let list = text(&out.stdout);
    assert!(
        list.contains("alice\tAlice A.\t1001\toffline\tsales=2,support=5"),
        "{list}"
    );

    let out = run(switchboard(dir.path())
        .args(["agent", "set-skills", "alice", "billing=3"])
        .args(db));
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = run(switchboard(dir.path()).args(["agent", "list"]).args(db));
    assert!(
        text(&out.stdout).contains("\tbilling=3"),
        "{}",
        text(&out.stdout)
    );

    let out = run(switchboard(dir.path())
        .args(["agent", "add", "alice", "--password", "x"])
        .args(db));
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("already taken"),
        "{}",
        text(&out.stderr)
    );

    let out = run(switchboard(dir.path())
        .args(["agent", "remove", "alice"])
        .args(db));
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = run(switchboard(dir.path()).args(["agent", "list"]).args(db));
    assert!(!text(&out.stdout).contains("alice"));
    let out = run(switchboard(dir.path())
        .args(["agent", "remove", "alice"])
        .args(db));
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("not found"));
}

#[test]
fn agent_commands_read_the_database_url_from_the_environment() {
    let dir = TempDir::new("cli").unwrap();
    let url = db_url(dir.path());
    let out = run(switchboard(dir.path())
        .env("SWITCHBOARD_DATABASE_URL", &url)
        .args(["agent", "add", "bob", "--password", "pw"]));
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(dir.path().join("agents.db").is_file());
    let out = run(switchboard(dir.path())
        .env("SWITCHBOARD_DATABASE_URL", &url)
        .args(["agent", "list"]));
    assert!(text(&out.stdout).contains("bob\tbob\t-\toffline\t"));
    // Not the default file in the working directory.
    assert!(!dir.path().join("switchboard.db").exists());
}

#[test]
fn bad_skills_fail_with_a_clear_message() {
    let dir = TempDir::new("cli").unwrap();
    let url = db_url(dir.path());
    for (skills, expect) in [
        ("support=9", "levels are 1 to 5"),
        ("support", "is not NAME=LEVEL"),
        ("Support=1", "skill name"),
    ] {
        let out = run(switchboard(dir.path())
            .args([
                "agent",
                "add",
                "carol",
                "--password",
                "pw",
                "--skills",
                skills,
            ])
            .args(["--database-url", &url]));
        assert!(!out.status.success(), "{skills}");
        let err = text(&out.stderr);
        assert!(err.contains(expect), "{skills}: {err}");
    }
    let out = run(switchboard(dir.path())
        .args(["agent", "set-skills", "carol", "x=0"])
        .args(["--database-url", &url]));
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("levels are 1 to 5"));
}

#[test]
fn db_migrate_twice_is_fine() {
    let dir = TempDir::new("cli").unwrap();
    for _ in 0..2 {
        let out = run(switchboard(dir.path())
            .args(["db", "migrate"])
            .args(["--database-url", &db_url(dir.path())]));
        assert!(out.status.success(), "{}", text(&out.stderr));
    }
}

#[test]
fn bad_settings_name_the_setting_and_source() {
    let dir = TempDir::new("cli").unwrap();
    let out = run(switchboard(dir.path())
        .env("SWITCHBOARD_RTP_PORTS", "20001-20009")
        .args(["db", "migrate"]));
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(err.contains("rtp_ports"), "{err}");
    assert!(err.contains("SWITCHBOARD_RTP_PORTS"), "{err}");
    assert!(err.contains("even"), "{err}");
}

#[test]
fn check_reports_yaml_errors_with_positions() {
    let dir = TempDir::new("cli").unwrap();
    let flows = dir.path().join("flows");
    std::fs::create_dir(&flows).unwrap();
    std::fs::write(
        flows.join("good.yaml"),
        "name: main\nnumbers: [\"100\"]\nstart: a\nnodes:\n  a: { hangup: {} }\n",
    )
    .unwrap();
    let out = run(switchboard(dir.path()).args(["check", "flows"]));
    assert!(out.status.success(), "{}", text(&out.stdout));

    std::fs::write(flows.join("bad.yaml"), "name: main\nnodes: [a, b\n").unwrap();
    let out = run(switchboard(dir.path()).args(["check", "flows", "--sounds", "snd"]));
    assert_eq!(out.status.code(), Some(1));
    let stdout = text(&out.stdout);
    let line = stdout.lines().next().unwrap_or_default();
    assert!(line.starts_with("flows/bad.yaml:"), "{stdout}");
    assert!(line.contains(": error: "), "{stdout}");

    // The `flows` setting is the default folder.
    let out = run(switchboard(dir.path())
        .env("SWITCHBOARD_FLOWS", "missing")
        .arg("check"));
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stdout).starts_with("missing:"));
}

/// A running `switchboard serve`.
struct Server {
    child: Child,
    sip: SocketAddr,
    http: SocketAddr,
    stderr: mpsc::Receiver<String>,
}

impl Server {
    fn start(cmd: &mut Command) -> Server {
        let mut child = cmd
            .arg("serve")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn serve");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut seen = String::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) => {
                    seen.push_str(&line);
                    seen.push('\n');
                    if let Some((sip, http)) = parse_listening(&line) {
                        return Server {
                            child,
                            sip,
                            http,
                            stderr: rx,
                        };
                    }
                }
                Err(_) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!("no listening line; stderr:\n{seen}");
                }
            }
        }
    }

    /// Sends SIGTERM and returns the exit status code and the time it took.
    fn terminate(mut self) -> (Option<i32>, Duration) {
        let started = Instant::now();
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success());
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return (status.code(), started.elapsed());
            }
            if started.elapsed() > Duration::from_secs(15) {
                let _ = self.child.kill();
                let _ = self.child.wait();
                let rest: Vec<String> = self.stderr.try_iter().collect();
                panic!(
                    "serve did not exit after SIGTERM; stderr:\n{}",
                    rest.join("\n")
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// `serve` in `dir` on loopback ports it picks, with its own database and
/// `extra` flags.
fn serve_on_loopback(dir: &Path, extra: &[&str]) -> Server {
    Server::start(
        switchboard(dir)
            .args([
                "--sip-listen",
                "127.0.0.1:0",
                "--http-listen",
                "127.0.0.1:0",
            ])
            .args(["--database-url", &db_url(dir)])
            .args(extra),
    )
}

/// `... listening sip=ADDR http=ADDR` → the two addresses.
fn parse_listening(line: &str) -> Option<(SocketAddr, SocketAddr)> {
    let rest = &line[line.find("listening sip=")? + "listening sip=".len()..];
    let (sip, rest) = rest.split_once(" http=")?;
    let http = rest.split_whitespace().next()?;
    Some((sip.parse().ok()?, http.parse().ok()?))
}

fn http_get(addr: SocketAddr, path: &str) -> String {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read");
    response
}

#[test]
fn serve_listens_answers_health_and_stops_on_sigterm() {
    let dir = TempDir::new("cli").unwrap();
    let server = serve_on_loopback(dir.path(), &[]);
    assert_ne!(server.sip.port(), 0);
    assert_ne!(server.http.port(), 0);
    // SIP UDP and TCP share the port.
    assert!(TcpStream::connect(server.sip).is_ok());

    let health = http_get(server.http, "/healthz");
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
    assert!(health.ends_with("ok"), "{health}");
    let metrics = http_get(server.http, "/metrics");
    assert!(metrics.contains("\nswitchboard_up 1\n"), "{metrics}");

    let (code, took) = server.terminate();
    assert_eq!(code, Some(0));
    assert!(took < Duration::from_secs(5), "{took:?}");
}

#[test]
fn serve_settings_precedence_file_env_flag() {
    let dir = TempDir::new("cli").unwrap();
    std::fs::write(
        dir.path().join("switchboard.toml"),
        format!(
            "sip_listen = \"127.0.0.2:0\"\nhttp_listen = \"127.0.0.1:0\"\ndatabase_url = \"{}\"\n",
            db_url(dir.path())
        ),
    )
    .unwrap();

    // ./switchboard.toml over the defaults.
    let server = Server::start(&mut switchboard(dir.path()));
    assert_eq!(server.sip.ip().to_string(), "127.0.0.2");
    assert_eq!(server.terminate().0, Some(0));

    // The environment over the file.
    let server =
        Server::start(switchboard(dir.path()).env("SWITCHBOARD_SIP_LISTEN", "127.0.0.3:0"));
    assert_eq!(server.sip.ip().to_string(), "127.0.0.3");
    assert_eq!(server.terminate().0, Some(0));

    // A flag over the environment.
    let server = Server::start(
        switchboard(dir.path())
            .env("SWITCHBOARD_SIP_LISTEN", "127.0.0.3:0")
            .args(["--sip-listen", "127.0.0.4:0"]),
    );
    assert_eq!(server.sip.ip().to_string(), "127.0.0.4");
    assert_eq!(server.terminate().0, Some(0));

    // --config names the file from anywhere.
    let elsewhere = TempDir::new("cli").unwrap();
    let config = dir.path().join("switchboard.toml");
    let server =
        Server::start(switchboard(elsewhere.path()).args(["--config", config.to_str().unwrap()]));
    assert_eq!(server.sip.ip().to_string(), "127.0.0.2");
    assert_eq!(server.terminate().0, Some(0));
}

/// The nice value of each of `pid`'s threads named `media-N`, once every
/// worker has set its own (they do at start).
fn media_worker_nice(pid: u32, want: i32) -> Vec<i32> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let mut found = Vec::new();
        for task in std::fs::read_dir(format!("/proc/{pid}/task"))
            .expect("task dir")
            .flatten()
        {
            let path = task.path();
            let comm = std::fs::read_to_string(path.join("comm")).unwrap_or_default();
            let name = comm.trim_end();
            let is_worker = name
                .strip_prefix("media-")
                .is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit()));
            if !is_worker {
                continue;
            }
            // Field 19 of stat; the fields after the `(comm)` start at 3.
            let stat = std::fs::read_to_string(path.join("stat")).unwrap_or_default();
            let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
            if let Some(nice) = after
                .split_whitespace()
                .nth(16)
                .and_then(|n| n.parse().ok())
            {
                found.push(nice);
            }
        }
        if (!found.is_empty() && found.iter().all(|&n| n == want)) || Instant::now() > deadline {
            return found;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[cfg(target_os = "linux")]
#[test]
fn serve_gives_the_media_workers_their_nice_value() {
    let dir = TempDir::new("cli").unwrap();
    let serve = |extra: &[&str]| serve_on_loopback(dir.path(), extra);

    // Raising a nice value needs no privilege: the workers take it.
    let server = serve(&["--media-nice", "7"]);
    let nice = media_worker_nice(server.child.id(), 7);
    assert!(!nice.is_empty(), "no media-N threads");
    assert!(nice.iter().all(|&n| n == 7), "{nice:?}");
    assert_eq!(server.terminate().0, Some(0));

    // The default (-10) needs CAP_SYS_NICE: granted, the workers run at
    // -10; refused, they keep the process's and the switch says why.
    let server = serve(&[]);
    let nice = media_worker_nice(server.child.id(), -10);
    let granted = nice.iter().all(|&n| n == -10);
    let (code, _) = {
        let said: Vec<String> = server.stderr.try_iter().collect();
        if !granted {
            assert!(nice.iter().all(|&n| n == 0), "{nice:?}");
            assert!(
                said.iter()
                    .any(|l| l.contains("media workers keep the process's priority")),
                "workers at {nice:?} and nothing said:\n{}",
                said.join("\n")
            );
        }
        server.terminate()
    };
    assert_eq!(code, Some(0));
}
