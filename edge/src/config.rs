//! `edge.toml`: what one edge site runs and where it delivers.
//!
//! ```toml
//! edge_id = "edge-alm-01"
//!
//! [server]
//! url = "https://10.0.0.5:8443"
//! ca = "/etc/safecity/ca.pem"  # the CA that signed the server's certificate
//! token = "..."            # or token_env = "SAFECITY_EDGE_TOKEN"
//!
//! [spool]
//! dir = "/var/lib/safecity/spool"
//! max_mb = 2048
//!
//! [models]                  # all optional: the shipped models on 1 worker
//! workers = 1
//! threads = 2
//! provider = "cpu"          # cuda[:N], tensorrt[:N] with a GPU build
//! plate_views = 3           # crop views per plate read (default: all the reader's)
//!
//! [batching]
//! max_batch = 8
//! max_wait_ms = 25
//!
//! [api]
//! listen = "127.0.0.1:8091"  # pillar alarms in, metrics out
//!
//! [[cameras]]
//! id = "alm-cam-0001"
//! url = "rtsp://10.1.0.11/stream1"
//! lat = 43.2389
//! lon = 76.9455
//! fps = 10
//!
//! [[pillars]]
//! id = "alm-pil-0001"
//! url = "rtsp://10.1.0.51/stream1"
//! lat = 43.2391
//! lon = 76.9460
//! ```
//!
//! Every mistake is reported with the file and the field, and what to write
//! instead.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use safecity_models::Provider;
use serde::Deserialize;

/// A whole `edge.toml`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EdgeConfig {
    /// This site's name in every event it sends.
    pub edge_id: String,
    pub server: ServerConfig,
    pub spool: SpoolSection,
    #[serde(default)]
    pub models: ModelsSection,
    #[serde(default)]
    pub batching: BatchingSection,
    #[serde(default)]
    pub api: ApiSection,
    #[serde(default)]
    pub cameras: Vec<StreamConfig>,
    #[serde(default)]
    pub pillars: Vec<PillarConfig>,
}

/// Where events go.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// Base URL of the search server, `https://host:port` (or `http://`
    /// on a trusted network).
    pub url: String,
    /// PEM file of the CA that signed the server's certificate; the server
    /// is trusted only if it checks out against it. Without it, an
    /// `https://` server is checked against the public web's CAs.
    #[serde(default)]
    pub ca: Option<PathBuf>,
    /// The edge's bearer token (role `edge`).
    #[serde(default)]
    pub token: Option<String>,
    /// Or the environment variable holding it.
    #[serde(default)]
    pub token_env: Option<String>,
    /// Events per request.
    #[serde(default = "default_send_batch")]
    pub batch: usize,
}

/// The on-disk spool.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpoolSection {
    pub dir: PathBuf,
    /// Size cap in MiB; at the cap the oldest plain reads go first, alarms
    /// never.
    #[serde(default = "default_spool_mb")]
    pub max_mb: u64,
}

/// Models and inference workers.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelsSection {
    pub detector: Option<PathBuf>,
    pub plate_reader: Option<PathBuf>,
    pub colour: Option<PathBuf>,
    /// Inference workers, each with its own sessions.
    #[serde(default = "one")]
    pub workers: usize,
    /// ONNX Runtime threads per session.
    #[serde(default = "one")]
    pub threads: usize,
    /// `cpu`, `cuda[:N]` or `tensorrt[:N]`.
    #[serde(default = "cpu")]
    pub provider: String,
    /// Crop views per plate read: the first N margins of the reader's
    /// description (`crop_margin`, then `crop_views`). `None` reads them all.
    #[serde(default)]
    pub plate_views: Option<usize>,
}

impl Default for ModelsSection {
    fn default() -> Self {
        ModelsSection {
            detector: None,
            plate_reader: None,
            colour: None,
            workers: 1,
            threads: 1,
            provider: cpu(),
            plate_views: None,
        }
    }
}

/// Batching of frames from all streams into the detector.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchingSection {
    #[serde(default = "default_batch")]
    pub max_batch: usize,
    #[serde(default = "default_wait")]
    pub max_wait_ms: u64,
    /// Decoded frames waiting per stream before the oldest is dropped.
    #[serde(default = "default_queue")]
    pub queue: usize,
}

impl Default for BatchingSection {
    fn default() -> Self {
        BatchingSection {
            max_batch: default_batch(),
            max_wait_ms: default_wait(),
            queue: default_queue(),
        }
    }
}

/// The edge's local HTTP API.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiSection {
    #[serde(default = "default_listen")]
    pub listen: String,
}

impl Default for ApiSection {
    fn default() -> Self {
        ApiSection {
            listen: default_listen(),
        }
    }
}

/// How RTSP is carried.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    #[default]
    Tcp,
    Udp,
}

/// One camera.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamConfig {
    pub id: String,
    /// `rtsp://`, `http(s)://`, `file://` or a path.
    pub url: String,
    pub lat: f64,
    pub lon: f64,
    /// Frames a second to run detection on.
    #[serde(default = "default_fps")]
    pub fps: f64,
    #[serde(default)]
    pub transport: Transport,
    /// RTSP jitter buffer.
    #[serde(default = "default_latency")]
    pub latency_ms: u32,
    /// Frames are scaled down to at most this width before detection.
    #[serde(default)]
    pub max_width: Option<u32>,
    /// For a file: play it at its own frame rate, looping, as a camera
    /// would (the default), or, with `false`, read it once as fast as
    /// decoding and detection allow, dropping nothing (replaying a
    /// recording, measuring throughput).
    #[serde(default = "default_realtime")]
    pub realtime: bool,
}

/// One panic pillar: a stream plus an alarm input.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PillarConfig {
    #[serde(flatten)]
    pub stream: StreamConfig,
    /// Seconds of video kept before a press, and recorded after it.
    #[serde(default = "default_pre")]
    pub clip_before_s: u32,
    #[serde(default = "default_post")]
    pub clip_after_s: u32,
}

fn default_realtime() -> bool {
    true
}
fn default_send_batch() -> usize {
    200
}
fn default_spool_mb() -> u64 {
    1024
}
fn one() -> usize {
    1
}
fn cpu() -> String {
    "cpu".into()
}
fn default_batch() -> usize {
    8
}
fn default_wait() -> u64 {
    25
}
fn default_queue() -> usize {
    4
}
fn default_listen() -> String {
    "127.0.0.1:8091".into()
}
fn default_fps() -> f64 {
    10.0
}
fn default_latency() -> u32 {
    200
}
fn default_pre() -> u32 {
    10
}
fn default_post() -> u32 {
    20
}

/// A config that cannot be used, naming the file and the field.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {message}")]
pub struct ConfigError {
    pub path: PathBuf,
    pub message: String,
}

impl EdgeConfig {
    /// Reads and checks `path`.
    pub fn load(path: &Path) -> Result<EdgeConfig, ConfigError> {
        let err = |message: String| ConfigError {
            path: path.to_path_buf(),
            message,
        };
        let text = std::fs::read_to_string(path).map_err(|e| {
            err(format!(
                "cannot read it ({e}); pass --config with an edge.toml"
            ))
        })?;
        let config: EdgeConfig = toml::from_str(&text).map_err(|e| err(e.to_string()))?;
        config.validate().map_err(err)?;
        Ok(config)
    }

    /// The execution provider named in `[models]`.
    pub fn provider(&self) -> Provider {
        self.models.provider.parse().unwrap_or_default()
    }

    /// The API listen address.
    pub fn api_addr(&self) -> SocketAddr {
        self.api.listen.parse().expect("validated")
    }

    /// The edge token, from the file or the environment.
    pub fn token(&self) -> Option<String> {
        self.server.token.clone().or_else(|| {
            self.server
                .token_env
                .as_ref()
                .and_then(|v| std::env::var(v).ok())
        })
    }

    /// All streams, cameras first, with whether each is a pillar.
    pub fn streams(&self) -> impl Iterator<Item = (&StreamConfig, bool)> {
        self.cameras
            .iter()
            .map(|c| (c, false))
            .chain(self.pillars.iter().map(|p| (&p.stream, true)))
    }

    fn validate(&self) -> Result<(), String> {
        let name_ok = |s: &str| {
            !s.is_empty()
                && s.len() <= 64
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        };
        if !name_ok(&self.edge_id) {
            return Err(format!(
                "edge_id {:?}: use 1 to 64 letters, digits, '-', '_' or '.'",
                self.edge_id
            ));
        }
        let url = &self.server.url;
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(format!(
                "server.url {url:?}: give the server's base URL, like http://10.0.0.5:8080"
            ));
        }
        if let Some(ca) = &self.server.ca {
            if !url.starts_with("https://") {
                return Err(format!(
                    "server.ca is given but server.url {url:?} is not https://: the CA is only \
                     used over HTTPS"
                ));
            }
            safecity_core::tls::client_trusting(ca, "server.ca").map_err(|e| e.to_string())?;
        }
        if self.server.token.is_some() && self.server.token_env.is_some() {
            return Err("server: give token or token_env, not both".into());
        }
        if let Some(var) = &self.server.token_env {
            if std::env::var(var).is_err() {
                return Err(format!(
                    "server.token_env: the environment variable {var} is not set"
                ));
            }
        }
        if self.server.batch == 0 || self.server.batch > 5000 {
            return Err(format!(
                "server.batch = {}: use 1 to 5000 events per request",
                self.server.batch
            ));
        }
        if self.spool.max_mb < 16 {
            return Err(format!(
                "spool.max_mb = {}: give the spool at least 16 MiB",
                self.spool.max_mb
            ));
        }
        self.models
            .provider
            .parse::<Provider>()
            .map_err(|e| format!("models.provider: {e}"))?;
        if !(1..=64).contains(&self.models.workers) || !(1..=256).contains(&self.models.threads) {
            return Err("models.workers must be 1..64 and models.threads 1..256".into());
        }
        if let Some(v) = self.models.plate_views {
            if !(1..=16).contains(&v) {
                return Err(format!(
                    "models.plate_views = {v}: use 1 to 16 views, or leave it out to read all the reader's"
                ));
            }
        }
        if !(1..=64).contains(&self.batching.max_batch)
            || self.batching.max_wait_ms > 1000
            || !(1..=256).contains(&self.batching.queue)
        {
            return Err("batching: max_batch 1..64, max_wait_ms 0..1000 and queue 1..256".into());
        }
        self.api.listen.parse::<SocketAddr>().map_err(|_| {
            format!(
                "api.listen {:?}: give an address and port, like 127.0.0.1:8091",
                self.api.listen
            )
        })?;
        if self.cameras.is_empty() && self.pillars.is_empty() {
            return Err("no [[cameras]] or [[pillars]]: add at least one stream".into());
        }
        let mut seen = HashSet::new();
        for (s, pillar) in self.streams() {
            let what = if pillar { "pillars" } else { "cameras" };
            if !name_ok(&s.id) {
                return Err(format!(
                    "{what}: id {:?}: use 1 to 64 letters, digits, '-', '_' or '.'",
                    s.id
                ));
            }
            if !seen.insert(s.id.as_str()) {
                return Err(format!("{what}: id {:?} is used twice", s.id));
            }
            let scheme_ok = ["rtsp://", "rtsps://", "http://", "https://", "file://"]
                .iter()
                .any(|p| s.url.starts_with(p))
                || (!s.url.contains("://") && !s.url.is_empty());
            if !scheme_ok {
                return Err(format!(
                    "{what} {}: url {:?}: use rtsp://, http(s)://, file:// or a file path",
                    s.id, s.url
                ));
            }
            if !(-90.0..=90.0).contains(&s.lat) || !(-180.0..=180.0).contains(&s.lon) {
                return Err(format!(
                    "{what} {}: lat {} / lon {} is not a place on Earth (degrees, WGS84)",
                    s.id, s.lat, s.lon
                ));
            }
            if !(s.fps > 0.0 && s.fps <= 60.0) {
                return Err(format!(
                    "{what} {}: fps = {}: detection rate must be in (0, 60]",
                    s.id, s.fps
                ));
            }
            if s.latency_ms > 10_000 {
                return Err(format!(
                    "{what} {}: latency_ms = {} is over 10 s",
                    s.id, s.latency_ms
                ));
            }
            let is_file = s.url.starts_with("file://") || !s.url.contains("://");
            if !s.realtime && !is_file {
                return Err(format!(
                    "{what} {}: realtime = false is for files only; a live stream plays at its own rate",
                    s.id
                ));
            }
        }
        for p in &self.pillars {
            if p.clip_before_s > 120 || p.clip_after_s > 300 || p.clip_after_s == 0 {
                return Err(format!(
                    "pillars {}: clip_before_s must be 0..120 and clip_after_s 1..300",
                    p.stream.id
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
edge_id = "edge-alm-01"
[server]
url = "http://127.0.0.1:8080"
token = "t"
[spool]
dir = "/tmp/spool"
[[cameras]]
id = "alm-cam-0001"
url = "rtsp://127.0.0.1:8554/cam1"
lat = 43.2389
lon = 76.9455
[[pillars]]
id = "alm-pil-0001"
url = "rtsp://127.0.0.1:8554/pillar1"
lat = 43.2391
lon = 76.946
clip_before_s = 5
"#;

    fn load(text: &str) -> Result<EdgeConfig, String> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("edge.toml");
        std::fs::write(&path, text).unwrap();
        EdgeConfig::load(&path).map_err(|e| e.to_string())
    }

    #[test]
    fn the_example_config_is_valid() {
        std::env::set_var("SAFECITY_EDGE_TOKEN", "from-the-environment");
        let c = load(include_str!("../edge.example.toml")).unwrap();
        assert_eq!(c.edge_id, "edge-alm-01");
        assert_eq!(c.token().as_deref(), Some("from-the-environment"));
        assert_eq!(c.cameras.len(), 2);
        assert_eq!(c.cameras[0].max_width, Some(1920));
        assert_eq!(c.cameras[1].fps, 10.0);
        assert_eq!(c.pillars[0].stream.fps, 5.0);
        assert_eq!(c.pillars[0].clip_after_s, 20);
        assert_eq!(c.models.threads, 2);
    }

    #[test]
    fn a_minimal_config_gets_the_defaults() {
        let c = load(GOOD).unwrap();
        assert_eq!(c.cameras[0].fps, 10.0);
        assert_eq!(c.cameras[0].latency_ms, 200);
        assert_eq!(c.cameras[0].transport, Transport::Tcp);
        assert!(c.cameras[0].realtime);
        assert_eq!(c.pillars[0].clip_before_s, 5);
        assert_eq!(c.pillars[0].clip_after_s, 20);
        assert_eq!(c.provider(), Provider::Cpu);
        assert_eq!(c.batching.max_batch, 8);
        assert_eq!(
            c.models.plate_views, None,
            "every view the reader describes"
        );
        assert_eq!(c.token().as_deref(), Some("t"));
        assert_eq!(c.streams().count(), 2);
    }

    #[test]
    fn mistakes_name_the_file_and_field() {
        for (from, to, expect) in [
            (
                "edge_id = \"edge-alm-01\"",
                "edge_id = \"edge alm\"",
                "edge_id",
            ),
            (
                "url = \"http://127.0.0.1:8080\"",
                "url = \"127.0.0.1:8080\"",
                "server.url",
            ),
            ("lat = 43.2389", "lat = 143.2", "not a place on Earth"),
            (
                "id = \"alm-pil-0001\"",
                "id = \"alm-cam-0001\"",
                "used twice",
            ),
            (
                "url = \"rtsp://127.0.0.1:8554/cam1\"",
                "url = \"ftp://x\"",
                "rtsp://",
            ),
            ("[spool]", "[spool]\nmax_mb = 1", "spool.max_mb"),
            (
                "token = \"t\"",
                "token = \"t\"\ntokn = 1",
                "unknown field `tokn`",
            ),
            (
                "[[cameras]]",
                "[models]\nprovider = \"gpu\"\n[[cameras]]",
                "models.provider",
            ),
            (
                "[[cameras]]",
                "[models]\nplate_views = 0\n[[cameras]]",
                "models.plate_views = 0",
            ),
            ("lon = 76.9455", "lon = 76.9455\nfps = 0", "fps = 0"),
            (
                "lon = 76.9455",
                "lon = 76.9455\nrealtime = false",
                "realtime = false is for files only",
            ),
            // A typo in a pillar (its fields are flattened) is caught too.
            ("clip_before_s = 5", "clip_befor_s = 5", "clip_befor_s"),
        ] {
            assert!(GOOD.contains(from), "{from}");
            let e = load(&GOOD.replacen(from, to, 1)).unwrap_err();
            assert!(e.contains("edge.toml") && e.contains(expect), "{to}: {e}");
        }
        let e = EdgeConfig::load(Path::new("/nonexistent/edge.toml"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("/nonexistent/edge.toml") && e.contains("--config"),
            "{e}"
        );
    }
}
