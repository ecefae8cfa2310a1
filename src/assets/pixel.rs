//! The pixel a browser event is answered with, and its cache headers.

/// The pixel's fixed ETag, written once for the constants below.
macro_rules! pixel_etag {
    () => {
        "\"6b3edc43-20ec-4078-bc47-e965dd76b88a\""
    };
}

/// The fixed ETag of the pixel; a browser revalidating it gets a 304 and
/// the request is not logged as an event.
pub const PIXEL_ETAG: &str = pixel_etag!();

/// A transparent 1x1 GIF.
pub const PIXEL_GIF: &[u8] = &[
    0x47, 0x49, 0x46, 0x38, 0x39, 0x61, 0x01, 0x00, 0x01, 0x00, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff,
    0x21, 0xf9, 0x04, 0x01, 0x00, 0x00, 0x00, 0x00, 0x2c, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00, 0x02,
    0x02, 0x44, 0x01, 0x00, 0x3b,
];

/// Cache headers of the pixel (and its 304), exactly as the original sends them.
pub const PIXEL_HEADERS: &[&str] = &[
    concat!("ETag: ", pixel_etag!(), "\r\n"),
    "Cache-Control: private, no-cache, proxy-revalidate\r\n",
    "Pragma: no-cache\r\n",
    "Expires: Fri, 14 Apr 1995 11:30:00 GMT\r\n",
];
