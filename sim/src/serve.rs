//! Serving simulated cameras and pillars over RTSP, with their ground truth.
//!
//! Each stream is rendered once to an MP4 clip in the cache directory, keyed
//! by everything that changes its pixels, and then served in a loop: an
//! `appsrc` per client session pushes the clip's H.264 access units at the
//! frame rate, so serving costs no encoding. The loop is anchored to the
//! server's start time `t0`: frame `n` of the endless stream is shown at
//! `t0 + n / fps` whoever watches, which makes the ground truth (which plate
//! passed which camera when) a matter of arithmetic.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use gst::glib;
use gst::prelude::*;
use gst_rtsp_server::prelude::*;
use gstreamer as gst;
use gstreamer_app as gst_app;
use gstreamer_rtsp_server as gst_rtsp_server;
use safecity_core::sync::Locked;
use serde::{Deserialize, Serialize};

use super::error::{Result, SimError};
use super::pillar::PillarScene;
use super::scene::{Scene, SceneConfig, ScriptedPass};
use super::truth::{Direction, FrameTruth, Lighting, VehicleClass, VehicleColour};
use super::video::{encode_clip, gst_init, read_access_units, AccessUnit, ClipSpec, SharedBytes};

/// Bump when rendering changes, so cached clips are made again.
const RENDER_VERSION: u32 = 3;

/// What a stream shows.
#[derive(Debug, Clone, PartialEq)]
pub enum StreamSource {
    /// A road camera with random traffic and scripted passes.
    Road {
        lighting: Option<Lighting>,
        rain: Option<bool>,
        vehicles_per_minute: f64,
        scripted: Vec<ScriptedPass>,
    },
    /// A panic pillar whose button is pressed at `press_at_s` in each loop.
    Pillar { press_at_s: Option<f64> },
}

/// One simulated camera or pillar.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamSpec {
    pub id: String,
    pub name: String,
    pub lat: f64,
    pub lon: f64,
    pub source: StreamSource,
}

impl StreamSpec {
    pub fn is_pillar(&self) -> bool {
        matches!(self.source, StreamSource::Pillar { .. })
    }
}

/// Everything the simulated RTSP server needs.
#[derive(Debug, Clone, PartialEq)]
pub struct SimServerConfig {
    pub address: String,
    /// 0 picks a free port.
    pub port: u16,
    pub width: u32,
    pub height: u32,
    pub fps: u32,
    /// Length of the rendered clip that each stream loops.
    pub loop_s: f64,
    pub seed: u64,
    pub cache_dir: PathBuf,
    pub streams: Vec<StreamSpec>,
}

impl SimServerConfig {
    /// Checks the settings and names the first bad one.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(SimError::Config(m));
        if self.streams.is_empty() {
            return bad(
                "no cameras or pillars to serve; ask for at least one with --cameras".into(),
            );
        }
        if !(16..=7680).contains(&self.width) || !(16..=4320).contains(&self.height) {
            return bad(format!(
                "frame size {}x{} is out of range 16x16..7680x4320",
                self.width, self.height
            ));
        }
        if !self.width.is_multiple_of(2) || !self.height.is_multiple_of(2) {
            return bad(format!(
                "frame size {}x{} must be even for H.264",
                self.width, self.height
            ));
        }
        if !(1..=60).contains(&self.fps) {
            return bad(format!("fps {} is out of range 1..60", self.fps));
        }
        if !(2.0..=3600.0).contains(&self.loop_s) {
            return bad(format!(
                "loop length {} s is out of range 2..3600",
                self.loop_s
            ));
        }
        let mut ids = std::collections::HashSet::new();
        for s in &self.streams {
            if !ids.insert(&s.id) {
                return bad(format!("stream id {:?} is used twice", s.id));
            }
        }
        Ok(())
    }

    fn frames(&self) -> u64 {
        (self.loop_s * self.fps as f64).round() as u64
    }
}

/// One vehicle pass in a rendered clip, in seconds from the clip start.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClipPass {
    pub vehicle: u64,
    pub class: VehicleClass,
    pub colour: VehicleColour,
    pub direction: Direction,
    pub plate: Option<String>,
    pub plate_display: Option<String>,
    pub plate_format: Option<safecity_core::PlateFormat>,
    pub first_seen_s: f64,
    pub last_seen_s: f64,
    /// When the plate was readable, if it ever was.
    pub readable: Option<(f64, f64)>,
    /// When the plate looked biggest while readable, else the vehicle.
    pub best_s: f64,
}

/// Folds per-frame truth into one [`ClipPass`] per vehicle.
#[derive(Default)]
struct PassCollector {
    passes: BTreeMap<u64, (ClipPass, f32)>,
}

impl PassCollector {
    fn add(&mut self, t: f64, truth: &FrameTruth) {
        for v in &truth.vehicles {
            let plate_area = v
                .plate
                .as_ref()
                .filter(|p| p.readable)
                .map(|p| p.bbox[2] * p.bbox[3]);
            let size = plate_area.map_or(v.bbox[2] * v.bbox[3] * 1e-6, |a| a + 1e6);
            let entry = self.passes.entry(v.id).or_insert_with(|| {
                (
                    ClipPass {
                        vehicle: v.id,
                        class: v.class,
                        colour: v.colour,
                        direction: v.direction,
                        plate: None,
                        plate_display: None,
                        plate_format: None,
                        first_seen_s: t,
                        last_seen_s: t,
                        readable: None,
                        best_s: t,
                    },
                    f32::MIN,
                )
            });
            let (pass, best) = entry;
            pass.last_seen_s = t;
            if let Some(p) = &v.plate {
                pass.plate = Some(p.text.clone());
                pass.plate_display = Some(p.display.clone());
                pass.plate_format = Some(p.format);
            }
            if plate_area.is_some() {
                pass.readable = Some(match pass.readable {
                    Some((from, _)) => (from, t),
                    None => (t, t),
                });
            }
            if size > *best {
                *best = size;
                pass.best_s = t;
            }
        }
    }

    fn finish(self) -> Vec<ClipPass> {
        let mut v: Vec<_> = self.passes.into_values().map(|(p, _)| p).collect();
        v.sort_by(|a, b| a.best_s.total_cmp(&b.best_s));
        v
    }
}

/// A stream rendered and ready to serve.
pub struct PreparedStream {
    pub spec: StreamSpec,
    pub clip: PathBuf,
    pub passes: Vec<ClipPass>,
    units: Arc<Vec<AccessUnit>>,
}

fn fnv1a(data: &str) -> u64 {
    data.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ b as u64).wrapping_mul(0x0100_0000_01b3)
    })
}

fn stream_seed(seed: u64, index: usize) -> u64 {
    fnv1a(&format!("{seed}/{index}"))
}

/// Renders (or finds in the cache) every stream of `config`. `progress` is
/// told each stream id and whether it came from the cache.
pub fn prepare_streams(
    config: &SimServerConfig,
    progress: &(dyn Fn(&str, bool) + Sync),
) -> Result<Vec<PreparedStream>> {
    config.validate()?;
    gst_init()?;
    std::fs::create_dir_all(&config.cache_dir).map_err(|e| SimError::io(&config.cache_dir, e))?;
    let frames = config.frames();
    let spec = ClipSpec::new(config.width, config.height, config.fps, frames);
    let queue = std::sync::Mutex::new(config.streams.iter().enumerate());
    // Rendering is the expensive part; one stream per core at a time.
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
    let prepared: Vec<Result<PreparedStream>> = std::thread::scope(|scope| {
        let mut results: Vec<(usize, Result<PreparedStream>)> = Vec::new();
        let handles: Vec<_> = (0..workers.min(config.streams.len()))
            .map(|_| {
                scope.spawn(|| {
                    let mut out = Vec::new();
                    loop {
                        let next = queue.locked().next();
                        let Some((index, stream)) = next else { break };
                        out.push((index, prepare_one(config, &spec, index, stream, progress)));
                    }
                    out
                })
            })
            .collect();
        for h in handles {
            results.extend(h.join().expect("render thread panicked"));
        }
        results.sort_by_key(|(i, _)| *i);
        results.into_iter().map(|(_, r)| r).collect()
    });
    prepared.into_iter().collect()
}

fn prepare_one(
    config: &SimServerConfig,
    clip: &ClipSpec,
    index: usize,
    stream: &StreamSpec,
    progress: &(dyn Fn(&str, bool) + Sync),
) -> Result<PreparedStream> {
    let seed = stream_seed(config.seed, index);
    let key = fnv1a(&format!(
        "v{RENDER_VERSION} {seed} {:?} {:?}",
        clip, stream.source
    ));
    let base = config
        .cache_dir
        .join(format!("{}-{key:016x}", sanitize(&stream.id)));
    let clip_path = base.with_extension("mp4");
    let passes_path = base.with_extension("passes.json");
    let cached = clip_path.exists() && passes_path.exists();
    if !cached {
        let passes = match &stream.source {
            StreamSource::Road { .. } => {
                let mut scene = road_scene(config, seed, &stream.source)?;
                let mut collector = PassCollector::default();
                encode_clip(clip, &clip_path, |i| {
                    let (img, truth) = scene.render_frame(i);
                    collector.add(i as f64 / config.fps as f64, &truth);
                    img
                })?;
                collector.finish()
            }
            StreamSource::Pillar { press_at_s } => {
                let mut scene =
                    PillarScene::new(config.width, config.height, config.fps, seed, *press_at_s);
                encode_clip(clip, &clip_path, |i| scene.render_frame(i))?;
                Vec::new()
            }
        };
        let json = serde_json::to_vec_pretty(&passes).expect("passes serialise");
        let tmp = passes_path.with_extension(format!("json.{}.partial", std::process::id()));
        std::fs::write(&tmp, json).map_err(|e| SimError::io(&tmp, e))?;
        std::fs::rename(&tmp, &passes_path).map_err(|e| SimError::io(&passes_path, e))?;
    }
    progress(&stream.id, cached);
    let passes: Vec<ClipPass> = std::fs::read(&passes_path)
        .map_err(|e| SimError::io(&passes_path, e))
        .and_then(|b| {
            serde_json::from_slice(&b).map_err(|e| {
                SimError::Config(format!(
                    "cached ground truth {} is unreadable ({e}); delete it to render again",
                    passes_path.display()
                ))
            })
        })?;
    let units = read_access_units(&clip_path)?;
    Ok(PreparedStream {
        spec: stream.clone(),
        clip: clip_path,
        passes,
        units: Arc::new(units),
    })
}

/// The scene of a road stream, as it is rendered for serving.
fn road_scene(config: &SimServerConfig, seed: u64, source: &StreamSource) -> Result<Scene> {
    let StreamSource::Road {
        lighting,
        rain,
        vehicles_per_minute,
        scripted,
    } = source
    else {
        return Err(SimError::Config("not a road stream".into()));
    };
    Scene::new(
        SceneConfig {
            width: config.width,
            height: config.height,
            fps: config.fps,
            duration_s: config.frames() as f64 / config.fps as f64,
            seed,
            lighting: *lighting,
            rain: *rain,
            vehicles_per_minute: *vehicles_per_minute,
        },
        scripted.clone(),
    )
}

fn sanitize(id: &str) -> String {
    id.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// A served stream: where to watch it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ServedStream {
    pub id: String,
    pub name: String,
    pub kind: &'static str,
    pub lat: f64,
    pub lon: f64,
    pub url: String,
}

/// Ground truth as it happens, in wall-clock time.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SimEvent {
    /// A vehicle passed a camera (told once the pass is over).
    Pass(PassRecord),
    /// A pillar's button was pressed (told at the press).
    Alarm(AlarmRecord),
}

/// A vehicle pass in wall-clock time.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PassRecord {
    pub camera_id: String,
    pub plate: Option<String>,
    pub display: Option<String>,
    pub format: Option<safecity_core::PlateFormat>,
    pub class: VehicleClass,
    pub colour: VehicleColour,
    pub direction: Direction,
    pub readable: bool,
    /// When the plate was best seen (or the vehicle, if never readable).
    pub ts: String,
    pub readable_from: Option<String>,
    pub readable_to: Option<String>,
    pub first_seen: String,
    pub last_seen: String,
    /// Which repetition of the clip this was, from 0.
    pub round: u64,
}

/// A pillar button press.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AlarmRecord {
    pub pillar_id: String,
    pub ts: String,
    pub lat: f64,
    pub lon: f64,
    pub round: u64,
}

/// RFC 3339 in UTC with milliseconds, as events carry it.
pub fn rfc3339_ms(t: SystemTime) -> String {
    let ms = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    let dt = safecity_core::clock::utc(ms);
    let f = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    dt.format(&f).expect("UTC time formats")
}

/// The running simulator: an RTSP server plus the ground-truth clock.
pub struct SimServer {
    main_loop: glib::MainLoop,
    server_thread: Option<JoinHandle<()>>,
    truth_thread: Option<JoinHandle<()>>,
    shutdown: Arc<AtomicBool>,
    port: u16,
    t0: SystemTime,
    streams: Vec<ServedStream>,
}

impl SimServer {
    /// Starts serving. `on_event` is called from a background thread with
    /// each pass and alarm as its time comes.
    pub fn start(
        config: &SimServerConfig,
        prepared: Vec<PreparedStream>,
        on_event: impl Fn(&SimEvent) + Send + 'static,
    ) -> Result<SimServer> {
        gst_init()?;
        let port_error = |message: String| SimError::Port {
            address: config.address.clone(),
            port: config.port,
            message,
        };
        if config.port != 0 {
            // gst-rtsp-server reports a busy port only as "failed"; ask first
            // so the user hears why.
            if let Err(e) = std::net::TcpListener::bind((config.address.as_str(), config.port)) {
                return Err(port_error(if e.kind() == std::io::ErrorKind::AddrInUse {
                    "already in use; stop what listens there or pick another with --rtsp-port"
                        .into()
                } else {
                    format!("cannot listen: {e}")
                }));
            }
        }
        let shutdown = Arc::new(AtomicBool::new(false));
        let t0_wall = SystemTime::now();
        let t0 = Instant::now();
        let fps = config.fps;

        let server = gst_rtsp_server::RTSPServer::new();
        server.set_address(&config.address);
        server.set_service(&config.port.to_string());
        let mounts = server.mount_points().expect("a server has mount points");
        let (mut cams, mut pillars) = (0, 0);
        let mut mount_paths = Vec::new();
        for stream in &prepared {
            let path = if stream.spec.is_pillar() {
                pillars += 1;
                format!("/pillar{pillars}")
            } else {
                cams += 1;
                format!("/cam{cams}")
            };
            let factory = gst_rtsp_server::RTSPMediaFactory::new();
            factory.set_launch(&format!(
                "( appsrc name=src is-live=true format=time do-timestamp=true \
                   caps=video/x-h264,stream-format=byte-stream,alignment=au,\
width={w},height={h},framerate={fps}/1 \
                 ! h264parse ! rtph264pay name=pay0 pt=96 config-interval=-1 )",
                w = config.width,
                h = config.height,
            ));
            factory.set_shared(true);
            let units = stream.units.clone();
            let stop = shutdown.clone();
            let id = stream.spec.id.clone();
            factory.connect_media_configure(move |_, media| {
                let element = media.element();
                let appsrc = element
                    .downcast_ref::<gst::Bin>()
                    .and_then(|bin| bin.by_name("src"))
                    .and_then(|e| e.downcast::<gst_app::AppSrc>().ok());
                let Some(appsrc) = appsrc else {
                    tracing::error!(stream = %id, "media has no appsrc");
                    return;
                };
                let (units, stop) = (units.clone(), stop.clone());
                std::thread::Builder::new()
                    .name(format!("sim-push-{id}"))
                    .spawn(move || push_access_units(&appsrc, &units, t0, fps, &stop))
                    .expect("spawn pusher thread");
            });
            mounts.add_factory(&path, factory);
            mount_paths.push(path);
        }

        // The server's listening source and the session cleanup timer are
        // kept as `glib::Source`s of this context, so that they can be
        // destroyed there on stop (a `SourceId` is looked up in the global
        // default context, where they are not).
        let context = glib::MainContext::new();
        let listener = server
            .create_source(None::<&gst_rtsp_server::gio::Cancellable>)
            .map_err(|e| port_error(format!("cannot serve RTSP: {e}")))?;
        listener.attach(Some(&context));
        let port = server.bound_port() as u16;
        let pool = server.session_pool().expect("a server has a session pool");
        // Drop sessions of clients that went away without TEARDOWN.
        let cleanup = glib::timeout_source_new(
            Duration::from_secs(2),
            None,
            glib::Priority::DEFAULT,
            move || {
                pool.cleanup();
                glib::ControlFlow::Continue
            },
        );
        cleanup.attach(Some(&context));
        let main_loop = glib::MainLoop::new(Some(&context), false);
        let server_thread = {
            let (main_loop, context) = (main_loop.clone(), context.clone());
            std::thread::Builder::new()
                .name("sim-rtsp".into())
                .spawn(move || {
                    let _ = context.with_thread_default(|| {
                        main_loop.run();
                        // Stop listening, then close the connections of the
                        // clients still watching, so that they see the end
                        // at once rather than a stalled stream.
                        listener.destroy();
                        cleanup.destroy();
                        server.client_filter(Some(&mut |_, _| {
                            gst_rtsp_server::RTSPFilterResult::Remove
                        }));
                    });
                    drop(server);
                })
                .expect("spawn RTSP thread")
        };

        let host = if config.address == "0.0.0.0" {
            "127.0.0.1"
        } else {
            &config.address
        };
        let streams: Vec<ServedStream> = prepared
            .iter()
            .zip(&mount_paths)
            .map(|(p, path)| ServedStream {
                id: p.spec.id.clone(),
                name: p.spec.name.clone(),
                kind: if p.spec.is_pillar() {
                    "pillar"
                } else {
                    "camera"
                },
                lat: p.spec.lat,
                lon: p.spec.lon,
                url: format!("rtsp://{host}:{port}{path}"),
            })
            .collect();

        let truth_thread = {
            let stop = shutdown.clone();
            let loop_s = config.frames() as f64 / config.fps as f64;
            let timeline = Timeline::new(&prepared, loop_s);
            std::thread::Builder::new()
                .name("sim-truth".into())
                .spawn(move || timeline.run(t0, t0_wall, &stop, on_event))
                .expect("spawn truth thread")
        };

        Ok(SimServer {
            main_loop,
            server_thread: Some(server_thread),
            truth_thread: Some(truth_thread),
            shutdown,
            port,
            t0: t0_wall,
            streams,
        })
    }

    /// The port the server listens on (useful when asked for port 0).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Wall-clock time of frame 0 of every stream.
    pub fn started_at(&self) -> SystemTime {
        self.t0
    }

    pub fn streams(&self) -> &[ServedStream] {
        &self.streams
    }

    /// Stops serving and waits for the background threads.
    pub fn stop(mut self) {
        self.shutdown_now();
    }

    fn shutdown_now(&mut self) {
        self.shutdown.store(true, Ordering::SeqCst);
        self.main_loop.quit();
        for handle in [self.server_thread.take(), self.truth_thread.take()]
            .into_iter()
            .flatten()
        {
            let _ = handle.join();
        }
    }
}

impl Drop for SimServer {
    fn drop(&mut self) {
        self.shutdown_now();
    }
}

/// Pushes the clip's access units into one client session's pipeline, in
/// real time and in step with the shared timeline, until the session ends.
fn push_access_units(
    appsrc: &gst_app::AppSrc,
    units: &[AccessUnit],
    t0: Instant,
    fps: u32,
    stop: &AtomicBool,
) {
    let len = units.len() as u64;
    let frame_ns = 1_000_000_000 / fps as u64;
    // Join at the next key frame, so the first frame a client gets decodes.
    let mut n = t0.elapsed().as_nanos() as u64 / frame_ns + 1;
    while !units[(n % len) as usize].keyframe {
        n += 1;
    }
    while !stop.load(Ordering::Relaxed) {
        let due = t0 + Duration::from_nanos(n * frame_ns);
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        let unit = &units[(n % len) as usize];
        let mut buffer = gst::Buffer::from_slice(SharedBytes(unit.data.clone()));
        {
            let b = buffer.get_mut().expect("new buffer is writable");
            b.set_duration(gst::ClockTime::from_nseconds(frame_ns));
            if !unit.keyframe {
                b.set_flags(gst::BufferFlags::DELTA_UNIT);
            }
        }
        if appsrc.push_buffer(buffer).is_err() {
            // Flushing: the session's pipeline is shutting down.
            return;
        }
        n += 1;
    }
}

/// The ground truth of one loop of every stream, sorted by when it is due.
struct Timeline {
    loop_s: f64,
    items: Vec<(f64, TimelineItem)>,
}

enum TimelineItem {
    Pass {
        camera: String,
        pass: ClipPass,
    },
    Alarm {
        pillar: String,
        lat: f64,
        lon: f64,
        at_s: f64,
    },
}

impl Timeline {
    fn new(prepared: &[PreparedStream], loop_s: f64) -> Timeline {
        let mut items = Vec::new();
        for p in prepared {
            match &p.spec.source {
                StreamSource::Road { .. } => {
                    for pass in &p.passes {
                        items.push((
                            pass.last_seen_s,
                            TimelineItem::Pass {
                                camera: p.spec.id.clone(),
                                pass: pass.clone(),
                            },
                        ));
                    }
                }
                StreamSource::Pillar {
                    press_at_s: Some(at),
                } => items.push((
                    *at,
                    TimelineItem::Alarm {
                        pillar: p.spec.id.clone(),
                        lat: p.spec.lat,
                        lon: p.spec.lon,
                        at_s: *at,
                    },
                )),
                StreamSource::Pillar { press_at_s: None } => {}
            }
        }
        items.sort_by(|a, b| a.0.total_cmp(&b.0));
        Timeline { loop_s, items }
    }

    fn run(
        &self,
        t0: Instant,
        t0_wall: SystemTime,
        stop: &AtomicBool,
        on_event: impl Fn(&SimEvent),
    ) {
        if self.items.is_empty() {
            return;
        }
        let wall = |s: f64| rfc3339_ms(t0_wall + Duration::from_secs_f64(s.max(0.0)));
        for round in 0u64.. {
            let offset = round as f64 * self.loop_s;
            for (due, item) in &self.items {
                let due_at = t0 + Duration::from_secs_f64(offset + due);
                // Sleep in short steps so stop is noticed quickly.
                while let Some(wait) = due_at.checked_duration_since(Instant::now()) {
                    if stop.load(Ordering::Relaxed) {
                        return;
                    }
                    std::thread::sleep(wait.min(Duration::from_millis(100)));
                }
                if stop.load(Ordering::Relaxed) {
                    return;
                }
                let event = match item {
                    TimelineItem::Pass { camera, pass } => SimEvent::Pass(PassRecord {
                        camera_id: camera.clone(),
                        plate: pass.plate.clone(),
                        display: pass.plate_display.clone(),
                        format: pass.plate_format,
                        class: pass.class,
                        colour: pass.colour,
                        direction: pass.direction,
                        readable: pass.readable.is_some(),
                        ts: wall(offset + pass.best_s),
                        readable_from: pass.readable.map(|r| wall(offset + r.0)),
                        readable_to: pass.readable.map(|r| wall(offset + r.1)),
                        first_seen: wall(offset + pass.first_seen_s),
                        last_seen: wall(offset + pass.last_seen_s),
                        round,
                    }),
                    TimelineItem::Alarm {
                        pillar,
                        lat,
                        lon,
                        at_s,
                    } => SimEvent::Alarm(AlarmRecord {
                        pillar_id: pillar.clone(),
                        ts: wall(offset + at_s),
                        lat: *lat,
                        lon: *lon,
                        round,
                    }),
                };
                on_event(&event);
            }
        }
    }
}

/// Sends a pillar press to `url` as a JSON POST, as a pillar's controller
/// would.
pub fn post_alarm(url: &str, alarm: &AlarmRecord) -> std::result::Result<(), String> {
    // What a pillar's controller sends the edge's local API; the edge
    // knows where its pillars stand.
    let body = serde_json::json!({
        "pillar_id": alarm.pillar_id,
        "ts": alarm.ts,
        "source": "simulator",
    });
    ureq::post(url)
        .timeout(Duration::from_secs(5))
        .send_json(body)
        .map(|_| ())
        .map_err(|e| format!("POST {url}: {e}"))
}

/// Where clips are cached when no directory is given.
pub fn default_cache_dir() -> PathBuf {
    std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir)
        .join("safecity")
        .join("sim")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Scenario;

    /// The demo's story holds: every camera of the built-in scenario shows
    /// the fleeing car's plate readable around its scripted moment, in the
    /// very scenes the server renders.
    #[test]
    fn the_built_in_scenario_shows_each_scripted_plate() {
        let scenario = Scenario::hit_and_run();
        let config = SimServerConfig {
            address: "127.0.0.1".into(),
            port: 0,
            width: 1280,
            height: 720,
            fps: 25,
            loop_s: scenario.loop_s,
            seed: scenario.seed.unwrap(),
            cache_dir: std::env::temp_dir(),
            streams: scenario.streams(),
        };
        for (index, stream) in config.streams.iter().enumerate() {
            let StreamSource::Road { scripted, .. } = &stream.source else {
                continue;
            };
            let mut scene =
                road_scene(&config, stream_seed(config.seed, index), &stream.source).unwrap();
            for pass in scripted {
                let centre = (pass.at_s * config.fps as f64).round() as u64;
                let seen = (centre - 12..=centre + 12).any(|i| {
                    scene.render_frame(i).1.vehicles.iter().any(|v| {
                        v.plate
                            .as_ref()
                            .is_some_and(|p| p.readable && p.text == pass.plate)
                    })
                });
                assert!(
                    seen,
                    "{}: {} not readable within 0.5 s of {} s",
                    stream.id, pass.plate, pass.at_s
                );
            }
        }
    }
}
