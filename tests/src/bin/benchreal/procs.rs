//! The real binaries as child processes: starting them, their peak memory
//! and CPU, the server's lifetime.

use super::*;

/// Peak resident memory of a process so far, in MB (Linux: VmHWM).
pub(crate) fn peak_rss_mb(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// CPU time of a process so far, in clock ticks (Linux: utime + stime).
pub(crate) fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The fields after the command name: state is the first, utime the 12th.
    let rest: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    Some(rest.get(11)?.parse::<u64>().ok()? + rest.get(12)?.parse::<u64>().ok()?)
}

/// How long a process keeps working from now: the time until the last
/// 100 ms in which it used more than 10 ms of CPU, once it has been idle
/// for a second (at most ten minutes).
pub(crate) fn busy_for(pid: u32) -> f64 {
    let start = Instant::now();
    let mut last_busy = start;
    let mut prev = cpu_ticks(pid).unwrap_or(0);
    while last_busy.elapsed() < Duration::from_secs(1) && start.elapsed().as_secs() < 600 {
        std::thread::sleep(Duration::from_millis(100));
        let now = cpu_ticks(pid).unwrap_or(prev);
        if now > prev + 1 {
            last_busy = Instant::now();
        }
        prev = now;
    }
    (last_busy - start).as_secs_f64()
}

/// Starts a new peak-memory measurement of a process (Linux: writing 5 to
/// clear_refs resets VmHWM to the current resident size).
pub(crate) fn reset_peak_rss(pid: u32) {
    let _ = std::fs::write(format!("/proc/{pid}/clear_refs"), "5");
}

/// One finished process.
pub(crate) struct Finished {
    pub(crate) seconds: f64,
    pub(crate) peak_mb: Option<f64>,
    pub(crate) stdout: String,
}

impl Finished {
    pub(crate) fn json(&self) -> anyhow::Result<Value> {
        serde_json::from_str(&self.stdout)
            .with_context(|| format!("not JSON on stdout: {}", self.stdout))
    }
}

pub(crate) fn read_all(mut r: impl Read + Send + 'static) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut s = String::new();
        let _ = r.read_to_string(&mut s);
        s
    })
}

/// The binaries under test.
pub(crate) struct Bins {
    pub(crate) returnee: PathBuf,
    pub(crate) server: PathBuf,
}

impl Bins {
    pub(crate) fn find(dir: &Path) -> anyhow::Result<Bins> {
        let b = |name: &str| {
            let p = dir.join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
            ensure!(
                p.is_file(),
                "{} is missing; build it with `cargo build --release -p returnee-cli -p returnee-server` or pass --bin-dir",
                p.display()
            );
            Ok(p)
        };
        Ok(Bins {
            returnee: b("returnee")?,
            server: b("returnee-server")?,
        })
    }

    /// Runs `returnee --data-dir DIR ARGS` to completion, timing it and
    /// sampling its peak memory every `every`; an exit other than 0 is an error.
    pub(crate) fn returnee(
        &self,
        dir: &Path,
        args: &[&str],
        every: Duration,
    ) -> anyhow::Result<Finished> {
        self.returnee_niced(dir, args, every, 0)
    }

    /// [`Bins::returnee`] at scheduling priority `nice` (0: as this
    /// process; higher: yields the CPU to the others), through `nice(1)`,
    /// which becomes the command (the same process id).
    pub(crate) fn returnee_niced(
        &self,
        dir: &Path,
        args: &[&str],
        every: Duration,
        nice: i32,
    ) -> anyhow::Result<Finished> {
        let start = Instant::now();
        let mut command = if nice == 0 {
            Command::new(&self.returnee)
        } else {
            let mut c = Command::new("nice");
            c.args(["-n", &nice.to_string()]).arg(&self.returnee);
            c
        };
        let mut child = command
            .arg("--data-dir")
            .arg(dir)
            .args(args)
            .env_remove("RETURNEE_DATA_DIR")
            .env_remove("RETURNEE_CA")
            .env_remove("RETURNEE_PASSPHRASE")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("cannot run {}", self.returnee.display()))?;
        let pid = child.id();
        let out = read_all(child.stdout.take().expect("piped"));
        let err = read_all(child.stderr.take().expect("piped"));
        let done = Arc::new(AtomicBool::new(false));
        let sampler = {
            let done = done.clone();
            std::thread::spawn(move || {
                let mut peak: Option<f64> = None;
                while !done.load(Ordering::Relaxed) {
                    if let Some(mb) = peak_rss_mb(pid) {
                        peak = Some(peak.map_or(mb, |p: f64| p.max(mb)));
                    }
                    std::thread::sleep(every);
                }
                peak
            })
        };
        let status = child.wait()?;
        let seconds = start.elapsed().as_secs_f64();
        done.store(true, Ordering::Relaxed);
        let peak_mb = sampler.join().expect("sampler");
        let stdout = out.join().expect("stdout reader");
        let stderr = err.join().expect("stderr reader");
        ensure!(
            status.success(),
            "`returnee {}` on {} failed ({status})\n--- stdout:\n{stdout}\n--- stderr:\n{stderr}",
            args.join(" "),
            dir.display()
        );
        Ok(Finished {
            seconds,
            peak_mb,
            stdout,
        })
    }

    /// A new laptop store at `dir`, enrolled at `url` with `code`.
    pub(crate) fn laptop(
        &self,
        dir: &Path,
        name: &str,
        url: &str,
        code: &str,
    ) -> anyhow::Result<()> {
        let every = Duration::from_millis(50);
        self.returnee(dir, &["init", "--device-name", name], every)?;
        self.returnee(dir, &["enroll", "--server", url, "--code", code], every)?;
        Ok(())
    }
}

/// `returnee-server serve` as a child process.
pub(crate) struct Server {
    pub(crate) child: Child,
    pub(crate) addr: SocketAddr,
    pub(crate) admin_code: String,
}

impl Server {
    pub(crate) fn start(bins: &Bins, data: &Path) -> anyhow::Result<Server> {
        Server::start_logging(bins, data, None)
    }

    /// `requests`: a file that receives the server's log of every request
    /// (one JSON object a line, with its route and milliseconds), read
    /// back by [`request_times`].
    pub(crate) fn start_logging(
        bins: &Bins,
        data: &Path,
        requests: Option<&Path>,
    ) -> anyhow::Result<Server> {
        let mut command = Command::new(&bins.server);
        command
            .args(["serve", "--bind", "127.0.0.1:0", "--data-dir"])
            .arg(data)
            .env_remove("RETURNEE_SERVER_TLS_CERT")
            .env_remove("RETURNEE_SERVER_TLS_KEY")
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        if let Some(file) = requests {
            command
                .args(["--log-format", "json"])
                .env("RUST_LOG", "warn,returnee_server::request=info")
                .stderr(std::fs::File::create(file)?);
        }
        let mut child = command
            .spawn()
            .with_context(|| format!("cannot run {}", bins.server.display()))?;
        let (tx, rx) = std::sync::mpsc::channel();
        let stdout = child.stdout.take().expect("piped");
        // Keeps draining stdout, so that the server never blocks on a full pipe.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let mut server = Server {
            child,
            addr: "127.0.0.1:0".parse().expect("an address"),
            admin_code: String::new(),
        };
        let first = rx
            .recv_timeout(Duration::from_secs(30))
            .context("the server printed nothing in 30 s")?;
        let url = first
            .strip_prefix("listening on ")
            .ok_or_else(|| anyhow!("the server's first line is not 'listening on': {first}"))?;
        server.addr = url.trim().trim_start_matches("http://").parse()?;
        let second = rx
            .recv_timeout(Duration::from_secs(10))
            .context("the server printed no admin enrollment code")?;
        server.admin_code = second
            .strip_prefix("admin enrollment code: ")
            .ok_or_else(|| anyhow!("not an admin enrollment code: {second}"))?
            .trim()
            .to_string();
        Ok(server)
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGTERM, and waits for the graceful stop.
    pub(crate) fn stop(mut self) -> anyhow::Result<()> {
        let status = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()?;
        ensure!(status.success(), "kill -TERM failed: {status}");
        let exit = self.child.wait()?;
        ensure!(exit.success(), "the server stopped with {exit}");
        Ok(())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // After `stop` the child is reaped already and these do nothing.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The milliseconds of every answered request to `route` in a request log
/// written by [`Server::start_logging`], sorted.
pub(crate) fn request_times(log: &Path, route: &str) -> anyhow::Result<Vec<f64>> {
    let mut times = Vec::new();
    for line in BufReader::new(std::fs::File::open(log)?).lines() {
        let line = line?;
        let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) else {
            continue; // a warning in text, not a request
        };
        if v["route"] == route
            && let Some(ms) = v["ms"].as_f64()
        {
            times.push(ms);
        }
    }
    times.sort_by(|a, b| a.partial_cmp(b).expect("a number"));
    Ok(times)
}
