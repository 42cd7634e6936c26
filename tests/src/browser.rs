//! A real browser for the dashboard's tests: Debian's headless `chromium`
//! driven through `chromedriver` (WebDriver) with fantoccini. One driver
//! and one browser per test binary; a failed step saves a screenshot under
//! the browser's temp folder and names it in the panic.

use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow};
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;

/// The browser binary (Debian's package `chromium`).
pub const CHROMIUM: &str = "/usr/bin/chromium";
/// The WebDriver server (Debian's package `chromium-driver`).
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// A headless Chromium window of 1280×800 and its driver.
pub struct Browser {
    pub client: Client,
    driver: Child,
    /// The browser profile (a fresh one each run).
    pub dir: tempfile::TempDir,
    /// Where [`Browser::shoot`] saves each page (`RETURNEE_SCREENSHOTS`), if anywhere.
    pub screenshots: Option<PathBuf>,
}

fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

impl Browser {
    /// Starts chromedriver and a fresh headless Chromium (its own profile).
    pub async fn start(screenshots: Option<PathBuf>) -> anyhow::Result<Browser> {
        for bin in [CHROMIUM, CHROMEDRIVER] {
            if !Path::new(bin).is_file() {
                return Err(anyhow!(
                    "{bin} is missing: install the browser with `apt-get install -y chromium chromium-driver` (.ci/run does)"
                ));
            }
        }
        let dir = tempfile::tempdir()?;
        let port = free_port()?;
        // A process group of its own, which the browser it starts joins:
        // killing the group leaves no Chromium behind (killing the driver
        // alone orphaned a whole browser per test run).
        let driver = Command::new(CHROMEDRIVER)
            .process_group(0)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting chromedriver")?;
        let started = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if started.elapsed() > Duration::from_secs(20) {
                return Err(anyhow!(
                    "chromedriver did not listen on port {port} in 20 s"
                ));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let profile = dir.path().join("profile");
        let caps = serde_json::json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                    "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync",
                    "--window-size=1280,800",
                    format!("--user-data-dir={}", profile.display()),
                ]
            }
        });
        let caps = caps.as_object().cloned().expect("an object");
        let client = ClientBuilder::new(HttpConnector::new())
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
            .context("opening a Chromium session through chromedriver")?;
        if let Some(d) = &screenshots {
            std::fs::create_dir_all(d)?;
        }
        Ok(Browser {
            client,
            driver,
            dir,
            screenshots,
        })
    }

    /// The first element `css` finds, waiting up to 5 s for it to appear
    /// (a page that a click navigates to may still be loading).
    pub async fn find(&self, css: &str) -> anyhow::Result<fantoccini::elements::Element> {
        self.client
            .wait()
            .at_most(Duration::from_secs(5))
            .for_element(Locator::Css(css))
            .await
            .with_context(|| format!("no element {css} on the page"))
    }

    /// The text of the first element `css` finds.
    pub async fn text(&self, css: &str) -> anyhow::Result<String> {
        Ok(self.find(css).await?.text().await?)
    }

    /// Waits up to 5 s for the first element `css` finds to hold `wanted`
    /// in its text (after a click that loads another page); returns the text.
    pub async fn wait_text(&self, css: &str, wanted: &str) -> anyhow::Result<String> {
        let until = Instant::now() + Duration::from_secs(5);
        loop {
            let text = self.text(css).await.unwrap_or_default();
            if text.contains(wanted) {
                return Ok(text);
            }
            if Instant::now() > until {
                return Err(anyhow!("{css} says {text:?}, not {wanted:?}"));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Clicks the first element `css` finds.
    pub async fn click(&self, css: &str) -> anyhow::Result<()> {
        self.find(css).await?.click().await?;
        Ok(())
    }

    /// Types `text` into the field `css` finds, replacing what it held.
    pub async fn fill(&self, css: &str, text: &str) -> anyhow::Result<()> {
        let e = self
            .client
            .find(Locator::Css(css))
            .await
            .with_context(|| format!("no field {css}"))?;
        e.clear().await?;
        e.send_keys(text).await?;
        Ok(())
    }

    /// Where the browser is.
    pub async fn url(&self) -> String {
        self.client
            .current_url()
            .await
            .map(|u| u.to_string())
            .unwrap_or_default()
    }

    /// Saves the page as `name.png` in `dir`; returns the path.
    pub async fn screenshot(&self, dir: &Path, name: &str) -> anyhow::Result<PathBuf> {
        let png = self.client.screenshot().await?;
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, png)?;
        Ok(path)
    }

    /// With `RETURNEE_SCREENSHOTS` set, saves the page there as `name.png`.
    pub async fn shoot(&self, name: &str) -> anyhow::Result<()> {
        if let Some(d) = &self.screenshots {
            self.screenshot(d, name).await?;
        }
        Ok(())
    }

    /// The value of a step, or a panic naming the step, the error and a
    /// screenshot of the page as it was.
    pub async fn check<T>(&self, step: &str, result: anyhow::Result<T>) -> T {
        match result {
            Ok(v) => v,
            Err(e) => {
                // Under the temp folder, kept after the test for the
                // person reading the failure.
                let dir = std::env::temp_dir()
                    .join(format!("returnee-browser-failure-{}", std::process::id()));
                let shot = match std::fs::create_dir_all(&dir) {
                    Ok(()) => match self.screenshot(&dir, step).await {
                        Ok(p) => p.display().to_string(),
                        Err(s) => format!("(no screenshot: {s})"),
                    },
                    Err(s) => format!("(no screenshot: {s})"),
                };
                panic!(
                    "browser step '{step}' failed at {}: {e:#}\nscreenshot: {shot}",
                    self.url().await
                );
            }
        }
    }

    /// Ends the session, the driver and the browser.
    pub async fn close(mut self) {
        let _ = self.client.clone().close().await;
        self.kill();
    }

    /// The process group of the driver and the browser it started.
    pub fn process_group(&self) -> u32 {
        self.driver.id()
    }

    /// SIGKILL to the driver's process group (the browser's processes
    /// too), then waits for the driver.
    fn kill(&mut self) {
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.driver.id())])
            .stderr(Stdio::null())
            .status();
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The processes left in process group `group`.
pub fn processes_in_group(group: u32) -> Vec<String> {
    let out = Command::new("pgrep")
        .args(["-g", &group.to_string(), "-a"])
        .output()
        .expect("pgrep runs");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}
