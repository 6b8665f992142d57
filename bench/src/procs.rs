//! The processes a bench drives: `tollgate sim`, `tollgate serve` and nginx,
//! each started on a free loopback port and stopped when dropped; plus the
//! CPU time they use (from `/proc`), to see where the cycles go.

use std::io::{BufRead as _, BufReader};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use tollgate::server::Ready;

/// How long a process may take to print its ready line / accept connections.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// A scratch folder removed when dropped.
#[derive(Debug)]
pub struct TempDir(PathBuf);

impl TempDir {
    /// Creates `$TMPDIR/tollgate-bench-<label>-<random>`.
    pub fn new(label: &str) -> anyhow::Result<Self> {
        let path = std::env::temp_dir().join(format!(
            "tollgate-bench-{label}-{}",
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::create_dir_all(&path).with_context(|| format!("creating {}", path.display()))?;
        Ok(Self(path))
    }

    /// The folder.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The last `lines` lines of a log file (for failure messages).
pub fn log_tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// A running `tollgate` process (sim or gateway); killed on drop.
#[derive(Debug)]
pub struct Tollgate {
    child: Child,
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its admin listener, when it has one (announced before the main one).
    pub admin: Option<SocketAddr>,
    /// Its stderr.
    pub log: PathBuf,
}

impl Tollgate {
    /// Starts the simulated cloud on the example policy set's `sim.toml`
    /// (`policies`), on an ephemeral port, with stderr in `dir`.
    pub fn sim(binary: &Path, policies: &Path, dir: &Path) -> anyhow::Result<Self> {
        let config = policies.join("sim.toml").display().to_string();
        Self::start(
            binary,
            &["sim", "--config", &config, "--listen", "127.0.0.1:0"],
            dir,
            "sim",
        )
    }

    /// Runs `tollgate --log-level warn ARGS` with stderr in `dir`, and waits
    /// for its ready line.
    pub fn start(binary: &Path, args: &[&str], dir: &Path, name: &str) -> anyhow::Result<Self> {
        let log = dir.join(format!("{name}.stderr.log"));
        let mut child = Command::new(binary)
            .args(["--log-level", "warn"])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).context("creating a log file")?)
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        let stdout = child.stdout.take().context("no stdout")?;
        let (tx, rx) = std::sync::mpsc::channel();
        // Reads the ready line, then keeps draining stdout so the pipe never fills.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(ready) = Ready::parse(&line) {
                    let _ = tx.send(ready);
                }
            }
        });
        // The admin listener (if any) announces itself before the main one.
        let mut admin = None;
        let main = loop {
            match rx.recv_timeout(START_TIMEOUT) {
                Ok(ready) if ready.role == "admin" => admin = Some(ready.addr),
                other => break other,
            }
        };
        match main {
            Ok(ready) => Ok(Self {
                child,
                addr: ready.addr,
                admin,
                log,
            }),
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                bail!(
                    "`tollgate {}` did not become ready:\n{}",
                    args.join(" "),
                    log_tail(&log, 20)
                )
            }
        }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Tollgate {
    fn drop(&mut self) {
        // SIGTERM first: the process drains and exits cleanly (and tools
        // wrapped around it, like a profiler, get to write their output).
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Picks a free loopback port (bind to port 0, read it back, release it).
pub fn free_port() -> anyhow::Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0").context("binding a free port")?;
    Ok(listener.local_addr()?)
}

/// A running nginx (master plus workers), stopped with `nginx -s stop` on drop.
#[derive(Debug)]
pub struct Nginx {
    binary: PathBuf,
    conf: PathBuf,
    prefix: PathBuf,
    child: Child,
    /// Where it listens.
    pub addr: SocketAddr,
    /// The master's and the workers' pids.
    pub pids: Vec<u32>,
}

/// `nginx.conf` for a plain reverse proxy in front of `upstream`, tuned the
/// way a production proxy would be: upstream keep-alive, no access log,
/// one worker per core.
pub fn nginx_conf(
    prefix: &Path,
    listen: SocketAddr,
    upstream: SocketAddr,
    workers: usize,
    v_output: &str,
) -> String {
    let p = prefix.display();
    // Temp paths of modules compiled out (nginx-light) are unknown directives.
    let mut temp_paths =
        format!("    client_body_temp_path {p}/client_body;\n    proxy_temp_path {p}/proxy;\n");
    for module in ["fastcgi", "uwsgi", "scgi"] {
        if !v_output.contains(&format!("--without-http_{module}_module")) {
            temp_paths.push_str(&format!("    {module}_temp_path {p}/{module};\n"));
        }
    }
    format!(
        r#"# Generated by tollgate-bench: nginx as a plain reverse proxy.
daemon off;
master_process on;
worker_processes {workers};
pid {p}/nginx.pid;
error_log {p}/error.log warn;

events {{
    worker_connections 4096;
}}

http {{
    access_log off;
{temp_paths}    keepalive_timeout 75s;
    keepalive_requests 1000000;

    upstream sim {{
        server {upstream};
        keepalive 256;
        keepalive_requests 1000000;
    }}

    server {{
        listen {listen} backlog=4096;
        location / {{
            proxy_pass http://sim;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $http_host;
        }}
    }}
}}
"#
    )
}

impl Nginx {
    /// Writes the config into `prefix` and starts `binary` in front of `upstream`.
    pub fn start(
        binary: &Path,
        prefix: &Path,
        upstream: SocketAddr,
        workers: usize,
    ) -> anyhow::Result<Self> {
        let v = Command::new(binary)
            .arg("-V")
            .output()
            .with_context(|| format!("running `{} -V`", binary.display()))?;
        // `nginx -V` prints on stderr.
        let v_output = format!(
            "{}{}",
            String::from_utf8_lossy(&v.stdout),
            String::from_utf8_lossy(&v.stderr)
        );
        let addr = free_port()?;
        let conf = prefix.join("nginx.conf");
        std::fs::write(
            &conf,
            nginx_conf(prefix, addr, upstream, workers, &v_output),
        )?;
        let stderr = prefix.join("nginx.stderr.log");
        let mut child = Command::new(binary)
            .arg("-c")
            .arg(&conf)
            .arg("-p")
            .arg(prefix)
            .arg("-e")
            .arg(prefix.join("error.log"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&stderr)?)
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                bail!(
                    "nginx exited at start ({status}):\n{}\n{}",
                    log_tail(&stderr, 10),
                    log_tail(&prefix.join("error.log"), 10)
                );
            }
            if TcpStream::connect(addr).is_ok() {
                break;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                bail!(
                    "nginx did not accept connections on {addr}:\n{}",
                    log_tail(&prefix.join("error.log"), 10)
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let mut nginx = Self {
            binary: binary.to_owned(),
            conf,
            prefix: prefix.to_owned(),
            pids: vec![child.id()],
            child,
            addr,
        };
        // The workers are forked right after the listen socket opens.
        let deadline = Instant::now() + Duration::from_secs(5);
        while nginx.pids.len() < workers + 1 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
            nginx.pids = std::iter::once(nginx.child.id())
                .chain(children_of(nginx.child.id()))
                .collect();
        }
        Ok(nginx)
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // SIGKILL on the master would leave the workers running: ask nginx.
        let _ = Command::new(&self.binary)
            .arg("-c")
            .arg(&self.conf)
            .arg("-p")
            .arg(&self.prefix)
            .args(["-s", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The pids whose parent is `pid`.
fn children_of(pid: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|child| {
            stat_fields(*child).and_then(|f| f.get(1)?.parse::<u32>().ok()) == Some(pid)
        })
        .collect()
}

/// The fields of `/proc/PID/stat` after the command name (state is index 0).
fn stat_fields(pid: u32) -> Option<Vec<String>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    Some(rest.split_whitespace().map(str::to_owned).collect())
}

/// User + system CPU time of the processes `pids` (plus this process when
/// `pids` contains 0), in clock ticks.
pub fn cpu_ticks(pids: &[u32]) -> u64 {
    let t = cpu_times(pids);
    t.user + t.system
}

/// CPU time in clock ticks, split into user and kernel (system) time.
#[derive(Debug, Clone, Copy, Default)]
pub struct CpuTicks {
    /// Time in the process's own code.
    pub user: u64,
    /// Time in the kernel on the process's behalf (system calls; on loopback
    /// that includes the TCP receive work of the peer a write wakes).
    pub system: u64,
}

/// [`cpu_ticks`], split into user and system time.
pub fn cpu_times(pids: &[u32]) -> CpuTicks {
    pids.iter()
        .filter_map(|&pid| {
            let fields = if pid == 0 {
                let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
                let rest = &stat[stat.rfind(')')? + 1..];
                rest.split_whitespace().map(str::to_owned).collect()
            } else {
                stat_fields(pid)?
            };
            // utime and stime are fields 14 and 15 of stat, 11 and 12 here.
            let user: u64 = fields.get(11)?.parse().ok()?;
            let system: u64 = fields.get(12)?.parse().ok()?;
            Some(CpuTicks { user, system })
        })
        .fold(CpuTicks::default(), |a, b| CpuTicks {
            user: a.user + b.user,
            system: a.system + b.system,
        })
}

/// Clock ticks per second (`getconf CLK_TCK`; 100 on Linux if that fails).
pub fn clock_ticks_per_sec() -> u64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok()?.trim().parse().ok())
        .filter(|&t| t > 0)
        .unwrap_or(100)
}

/// Busy CPU time of the whole machine (all cores), in clock ticks, from
/// `/proc/stat`: everything but idle and iowait.
pub fn machine_busy_ticks() -> u64 {
    let Ok(stat) = std::fs::read_to_string("/proc/stat") else {
        return 0;
    };
    let Some(line) = stat.lines().find(|l| l.starts_with("cpu ")) else {
        return 0;
    };
    let fields: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|f| f.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal (guest time is in user).
    fields
        .iter()
        .take(8)
        .enumerate()
        .filter(|(i, _)| *i != 3 && *i != 4)
        .map(|(_, v)| v)
        .sum()
}

/// Cores the whole machine kept busy over the next `window` (blocks).
pub fn machine_busy_cores(window: Duration, ticks_per_sec: u64) -> f64 {
    let start = machine_busy_ticks();
    std::thread::sleep(window);
    machine_busy_ticks().saturating_sub(start) as f64 / ticks_per_sec as f64 / window.as_secs_f64()
}

/// A named group of processes whose CPU time is measured over a phase.
#[derive(Debug, Clone)]
pub struct CpuGroup {
    /// Label for the report (`sim`, `gateway`, `nginx`, `loadgen`).
    pub name: &'static str,
    /// The pids (0 = this process).
    pub pids: Vec<u32>,
}

/// CPU use of each group between [`CpuMeter::start`] and [`CpuMeter::stop`].
#[derive(Debug)]
pub struct CpuMeter {
    groups: Vec<CpuGroup>,
    start: Vec<CpuTicks>,
    machine_start: u64,
    started: Instant,
}

/// One group's CPU use over a phase.
#[derive(Debug, Clone)]
pub struct CpuUse {
    /// The group's label.
    pub name: &'static str,
    /// CPU seconds used.
    pub seconds: f64,
    /// Of `seconds`, those spent in the kernel (system time; `None` for
    /// `other`, whose split is not measured).
    pub kernel_seconds: Option<f64>,
    /// Average cores busy (CPU seconds / wall seconds).
    pub cores: f64,
}

impl CpuMeter {
    /// Starts measuring.
    pub fn start(groups: Vec<CpuGroup>) -> Self {
        let start = groups.iter().map(|g| cpu_times(&g.pids)).collect();
        Self {
            groups,
            start,
            machine_start: machine_busy_ticks(),
            started: Instant::now(),
        }
    }

    /// Each group's CPU use since [`CpuMeter::start`], then `other`: what
    /// the rest of the machine used meanwhile (kernel softirq work for the
    /// loopback traffic, and any unrelated load that skews the figures).
    pub fn stop(self, ticks_per_sec: u64) -> Vec<CpuUse> {
        let wall = self.started.elapsed().as_secs_f64().max(1e-9);
        let machine = machine_busy_ticks().saturating_sub(self.machine_start);
        let mut ours = 0;
        let mut uses: Vec<CpuUse> = self
            .groups
            .iter()
            .zip(self.start)
            .map(|(g, start)| {
                let now = cpu_times(&g.pids);
                let user = now.user.saturating_sub(start.user);
                let system = now.system.saturating_sub(start.system);
                ours += user + system;
                let seconds = (user + system) as f64 / ticks_per_sec as f64;
                CpuUse {
                    name: g.name,
                    seconds,
                    kernel_seconds: Some(system as f64 / ticks_per_sec as f64),
                    cores: seconds / wall,
                }
            })
            .collect();
        let other = machine.saturating_sub(ours) as f64 / ticks_per_sec as f64;
        uses.push(CpuUse {
            name: "other",
            seconds: other,
            kernel_seconds: None,
            cores: other / wall,
        });
        uses
    }
}
