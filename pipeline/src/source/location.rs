//! Where a source reads from, and the GStreamer graph that reads it.

use std::path::PathBuf;

use gstreamer as gst;

use super::{RtspTransport, SourceConfig};

/// A parsed source URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Location {
    /// `rtsp://` or `rtsps://`, as given.
    Rtsp(String),
    /// `http://` or `https://`, as given.
    Http(String),
    /// A local file, from `file://` or a plain path.
    File(PathBuf),
}

/// What the user is told to use instead of an unsupported URL.
pub(crate) const SUPPORTED: &str = "use rtsp://, http(s)://, file:// or a path";

impl Location {
    /// Parses a source URL; the error says what is wrong with it.
    pub(crate) fn parse(url: &str) -> Result<Location, String> {
        let url = url.trim();
        if url.is_empty() {
            return Err("the URL is empty".into());
        }
        let Some((scheme, rest)) = url.split_once("://") else {
            return Ok(Location::File(PathBuf::from(url)));
        };
        let host = rest.split(['/', '?', '#']).next().unwrap_or("");
        let host = host.rsplit('@').next().unwrap_or("");
        match scheme.to_ascii_lowercase().as_str() {
            "rtsp" | "rtsps" if !host.is_empty() => Ok(Location::Rtsp(url.to_owned())),
            "http" | "https" if !host.is_empty() => Ok(Location::Http(url.to_owned())),
            "rtsp" | "rtsps" | "http" | "https" => Err("the URL names no host".into()),
            "file" => match gst::glib::filename_from_uri(url) {
                Ok((path, None)) => Ok(Location::File(path)),
                Ok((path, Some(host))) if host == "localhost" => Ok(Location::File(path)),
                Ok((_, Some(host))) => Err(format!(
                    "the file URL names the host {host:?}; write file:///absolute/path"
                )),
                Err(e) => Err(format!("not a file URL ({e})")),
            },
            _ => Err(format!("the scheme {scheme:?} is not supported")),
        }
    }

    /// Live sources reconnect when they end or fail; files do not.
    pub(crate) fn is_live(&self) -> bool {
        !matches!(self, Location::File(_))
    }

    /// The GStreamer element that reads this location, and the package it
    /// comes in.
    pub(crate) fn source_element(&self) -> (&'static str, &'static str) {
        match self {
            Location::Rtsp(_) => ("rtspsrc", "gstreamer1.0-plugins-good"),
            Location::Http(_) => ("souphttpsrc", "gstreamer1.0-plugins-good"),
            Location::File(_) => ("filesrc", "gstreamer1.0 (core)"),
        }
    }
}

/// Elements every source graph needs besides its source element, with the
/// package each comes in.
pub(crate) const COMMON_ELEMENTS: [(&str, &str); 6] = [
    ("decodebin", "gstreamer1.0-plugins-base"),
    ("queue", "gstreamer1.0 (core)"),
    ("videoscale", "gstreamer1.0-plugins-base"),
    ("videoconvert", "gstreamer1.0-plugins-base"),
    ("capsfilter", "gstreamer1.0 (core)"),
    ("appsink", "gstreamer1.0-plugins-base"),
];

/// The caps frames leave the graph with: I420, scaled down to fit
/// `max_size` with the aspect kept (never up), or at full size.
pub(crate) fn output_caps(max_size: Option<(u32, u32)>) -> String {
    match max_size {
        Some((w, h)) => format!(
            "video/x-raw,format={format},width=(int)[1,{w}],height=(int)[1,{h}],pixel-aspect-ratio=(fraction)1/1",
            format = crate::pixels::FORMAT,
        ),
        None => format!("video/x-raw,format={}", crate::pixels::FORMAT),
    }
}

/// The source's graph as a launch line. The location is set on `src` as a
/// property afterwards, so that no URL needs quoting; `src` and `dec` (and,
/// for RTSP, `dec` and `q`) are linked as their pads appear.
///
/// Named elements: `src` (reader), `dec` (decodebin), `q` (the queue after
/// the decoder, where frames are sampled), `sink` (appsink).
pub(crate) fn launch_line(location: &Location, config: &SourceConfig) -> String {
    let head = match location {
        Location::Rtsp(_) => format!(
            "rtspsrc name=src protocols={} latency={} drop-on-latency=true \
             add-reference-timestamp-meta=true  decodebin name=dec",
            match config.transport {
                RtspTransport::Tcp => "tcp",
                RtspTransport::Udp => "udp",
            },
            config.latency_ms,
        ),
        Location::Http(_) => "souphttpsrc name=src ! decodebin name=dec".to_owned(),
        Location::File(_) => "filesrc name=src ! decodebin name=dec".to_owned(),
    };
    // Live streams are handed on as they arrive; files played in real time
    // are paced by the sink's clock.
    let sync = match location {
        Location::Rtsp(_) => false,
        Location::Http(_) => true,
        Location::File(_) => config.realtime_files,
    };
    format!(
        "{head}  queue name=q max-size-buffers=3 max-size-bytes=0 max-size-time=0 \
         ! videoscale ! videoconvert ! capsfilter caps=\"{caps}\" \
         ! appsink name=sink sync={sync} max-buffers={queue} drop={drop} enable-last-sample=false",
        caps = output_caps(config.max_size),
        queue = config.queue.max(1),
        drop = location.is_live() || config.realtime_files,
    )
}

/// `url` with any password replaced by `***`, for messages and logs.
pub(crate) fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let Some((userinfo, host)) = authority.rsplit_once('@') else {
        return url.to_owned();
    };
    match userinfo.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}{tail}"),
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(url: &str) -> SourceConfig {
        SourceConfig::new("cam-1", url)
    }

    #[test]
    fn urls_parse_by_scheme() {
        assert_eq!(
            Location::parse("rtsp://10.0.0.5:554/stream1"),
            Ok(Location::Rtsp("rtsp://10.0.0.5:554/stream1".into()))
        );
        assert_eq!(
            Location::parse(" RTSPS://user:pw@cam/live "),
            Ok(Location::Rtsp("RTSPS://user:pw@cam/live".into()))
        );
        assert_eq!(
            Location::parse("https://cam.local/mjpeg"),
            Ok(Location::Http("https://cam.local/mjpeg".into()))
        );
        assert_eq!(
            Location::parse("file:///var/video/a%20b.mp4"),
            Ok(Location::File("/var/video/a b.mp4".into()))
        );
        assert_eq!(
            Location::parse("clips/x.mp4"),
            Ok(Location::File("clips/x.mp4".into()))
        );
        assert!(Location::parse("rtmp://host/app")
            .unwrap_err()
            .contains("rtmp"));
        assert!(Location::parse("rtsp:///path")
            .unwrap_err()
            .contains("host"));
        assert!(Location::parse("http://user@/x")
            .unwrap_err()
            .contains("host"));
        assert!(Location::parse("").is_err());
        assert!(Location::parse("file://relative/x.mp4")
            .unwrap_err()
            .contains("file:///"));
        assert_eq!(
            Location::parse("file://localhost/a.mp4"),
            Ok(Location::File("/a.mp4".into()))
        );
        assert!(Location::parse("rtsp://h/x").unwrap().is_live());
        assert!(!Location::parse("/a.mp4").unwrap().is_live());
    }

    #[test]
    fn rtsp_line_sets_transport_latency_and_ntp_meta() {
        let mut c = config("rtsp://h/x");
        let line = launch_line(&Location::parse(&c.url).unwrap(), &c);
        assert!(line.starts_with("rtspsrc name=src protocols=tcp latency=200 "));
        assert!(line.contains("drop-on-latency=true"));
        assert!(line.contains("add-reference-timestamp-meta=true"));
        assert!(line.contains("appsink name=sink sync=false max-buffers=4 drop=true"));
        // rtspsrc links to decodebin once its video pad appears.
        assert!(
            !line.contains("add-reference-timestamp-meta=true !"),
            "{line}"
        );
        c.transport = RtspTransport::Udp;
        c.latency_ms = 50;
        let line = launch_line(&Location::parse(&c.url).unwrap(), &c);
        assert!(line.contains("protocols=udp latency=50 "), "{line}");
    }

    #[test]
    fn scaling_and_conversion_follow_the_decoder_in_that_order() {
        let mut c = config("/a.mp4");
        c.max_size = Some((640, 360));
        let line = launch_line(&Location::parse(&c.url).unwrap(), &c);
        let at = |s: &str| line.find(s).unwrap_or_else(|| panic!("{s} in {line}"));
        assert!(at("decodebin") < at("queue name=q"));
        assert!(at("queue name=q") < at("videoscale"));
        assert!(at("videoscale") < at("videoconvert"));
        assert!(at("videoconvert") < at("width=(int)[1,640],height=(int)[1,360]"));
        assert!(line.contains("format=I420"));
        // Real-time files sync to the clock and drop like live streams.
        assert!(line.contains("sync=true max-buffers=4 drop=true"), "{line}");
        c.realtime_files = false;
        c.max_size = None;
        let line = launch_line(&Location::parse(&c.url).unwrap(), &c);
        assert!(
            line.contains("sync=false max-buffers=4 drop=false"),
            "{line}"
        );
        assert!(line.contains("caps=\"video/x-raw,format=I420\""), "{line}");
        assert!(line.starts_with("filesrc name=src ! decodebin name=dec"));
    }

    #[test]
    fn http_reads_through_souphttpsrc_in_real_time() {
        let c = config("http://cam/video.mjpg");
        let line = launch_line(&Location::parse(&c.url).unwrap(), &c);
        assert!(line.starts_with("souphttpsrc name=src ! decodebin name=dec"));
        assert!(line.contains("sync=true"));
    }

    #[test]
    fn every_line_parses_into_a_pipeline() {
        gst::init().unwrap();
        for url in ["rtsp://h/x", "http://h/x", "/tmp/x.mp4"] {
            let mut c = config(url);
            c.max_size = Some((320, 240));
            let line = launch_line(&Location::parse(url).unwrap(), &c);
            let parsed = gst::parse::launch(&line);
            // Missing plugins are reported at start; here only the syntax counts.
            if let Err(e) = &parsed {
                assert!(e.to_string().contains("no element"), "{line}: {e}");
            }
        }
    }

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact("rtsp://admin:secret@10.0.0.5:554/s1?x=a@b"),
            "rtsp://admin:***@10.0.0.5:554/s1?x=a@b"
        );
        assert_eq!(redact("rtsp://admin@cam/s1"), "rtsp://admin@cam/s1");
        assert_eq!(redact("rtsp://cam/s1"), "rtsp://cam/s1");
        assert_eq!(redact("/var/a@b:c.mp4"), "/var/a@b:c.mp4");
    }
}
