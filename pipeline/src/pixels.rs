//! Copying decoded frames out of GStreamer buffers into tightly packed
//! memory the models read ([`safecity_core::Picture`]).

use gst_video::prelude::*;
use gstreamer as gst;
use gstreamer_video as gst_video;
use safecity_core::{Layout, YuvMatrix};

/// The caps format frames leave the graph in: the decoder's own planar
/// YUV 4:2:0, so no frame is converted to RGB in full (the models convert
/// the pixels they read).
pub(crate) const FORMAT: &str = "I420";

/// A decoded frame's pixels without row padding, and their layout. `None`
/// for a format other than I420 and RGB.
pub(crate) fn copy_out(
    video: &gst_video::VideoFrameRef<&gst::BufferRef>,
) -> Option<(Vec<u8>, Layout)> {
    let (width, height) = (video.width(), video.height());
    let (w, h) = (width as usize, height as usize);
    let strides = video.plane_stride();
    let mut data = Vec::new();
    let mut plane = |index: u32, row: usize, rows: usize| -> Option<()> {
        let stride = *strides.get(index as usize)? as usize;
        let src = video.plane_data(index).ok()?;
        if stride == row {
            data.extend_from_slice(src.get(..row * rows)?);
        } else {
            for y in 0..rows {
                data.extend_from_slice(src.get(y * stride..y * stride + row)?);
            }
        }
        Some(())
    };
    match video.format() {
        gst_video::VideoFormat::I420 => {
            let (cw, ch) = (w.div_ceil(2), h.div_ceil(2));
            plane(0, w, h)?;
            plane(1, cw, ch)?;
            plane(2, cw, ch)?;
            let colorimetry = video.info().colorimetry();
            let matrix = match colorimetry.matrix() {
                gst_video::VideoColorMatrix::Bt709 => YuvMatrix::Bt709,
                gst_video::VideoColorMatrix::Bt2020 => YuvMatrix::Bt2020,
                gst_video::VideoColorMatrix::Bt601
                | gst_video::VideoColorMatrix::Fcc
                | gst_video::VideoColorMatrix::Smpte240m => YuvMatrix::Bt601,
                // Unknown: what GStreamer assumes by size.
                _ if height >= 720 => YuvMatrix::Bt709,
                _ => YuvMatrix::Bt601,
            };
            let full_range = colorimetry.range() == gst_video::VideoColorRange::Range0_255;
            let (layout, len) = Layout::i420_packed(width, height, matrix, full_range);
            debug_assert_eq!(data.len(), len);
            Some((data, layout))
        }
        gst_video::VideoFormat::Rgb => {
            plane(0, w * 3, h)?;
            Some((data, Layout::Rgb { stride: w * 3 }))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use safecity_core::Picture;

    fn frame(
        format: gst_video::VideoFormat,
        fill: impl Fn(&gst_video::VideoInfo, &mut [u8]),
    ) -> (gst::Buffer, gst_video::VideoInfo) {
        gst::init().unwrap();
        let info = gst_video::VideoInfo::builder(format, 3, 2).build().unwrap();
        let mut data = vec![0u8; info.size()];
        fill(&info, &mut data);
        (gst::Buffer::from_mut_slice(data), info)
    }

    #[test]
    fn i420_planes_are_copied_without_row_padding() {
        // 3x2: a luma row of 3 and a chroma row of 2 are both padded to 4.
        let (buffer, info) = frame(gst_video::VideoFormat::I420, |info, data| {
            let (o, s) = (info.offset(), info.stride());
            assert!(s[0] > 3 && s[1] > 2, "padded rows: {s:?}");
            for y in 0..2 {
                for x in 0..3 {
                    data[o[0] + y * s[0] as usize + x] = (10 * y + x) as u8;
                }
            }
            for x in 0..2 {
                data[o[1] + x] = 128;
                data[o[2] + x] = 128;
            }
        });
        let video =
            gst_video::VideoFrameRef::from_buffer_ref_readable(buffer.as_ref(), &info).unwrap();
        let (data, layout) = copy_out(&video).unwrap();
        assert_eq!(data.len(), 6 + 2 + 2);
        assert_eq!(&data[..6], &[0, 1, 2, 10, 11, 12]);
        let Layout::I420(planes) = layout else {
            panic!("{layout:?}")
        };
        // Small frames without colorimetry are BT.601, video range.
        assert_eq!(
            (planes.matrix, planes.full_range),
            (YuvMatrix::Bt601, false)
        );
        let p = Picture::new(&data, 3, 2, layout);
        assert_eq!(p.pixel(0, 0), [0, 0, 0], "16 and below is black");
        assert!(p.pixel(2, 1)[0] == p.pixel(2, 1)[2], "grey stays grey");
    }

    #[test]
    fn rgb_rows_are_copied_without_padding_and_other_formats_refused() {
        let (buffer, info) = frame(gst_video::VideoFormat::Rgb, |info, data| {
            let s = info.stride()[0] as usize;
            data[..9].copy_from_slice(&[1, 2, 3, 4, 5, 6, 7, 8, 9]);
            data[s..s + 3].copy_from_slice(&[200, 201, 202]);
        });
        let video =
            gst_video::VideoFrameRef::from_buffer_ref_readable(buffer.as_ref(), &info).unwrap();
        let (data, layout) = copy_out(&video).unwrap();
        assert_eq!(layout, Layout::Rgb { stride: 9 });
        assert_eq!(data.len(), 18);
        assert_eq!(
            Picture::new(&data, 3, 2, layout).pixel(0, 1),
            [200, 201, 202]
        );
        let (buffer, info) = frame(gst_video::VideoFormat::Nv12, |_, _| {});
        let video =
            gst_video::VideoFrameRef::from_buffer_ref_readable(buffer.as_ref(), &info).unwrap();
        assert!(copy_out(&video).is_none());
    }
}
