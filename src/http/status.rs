//! Status codes with their full status lines, precomputed.

/// A response status: code plus the complete `HTTP/1.1 ...\r\n` line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Status {
    /// Numeric code.
    pub code: u16,
    /// `HTTP/1.1 <code> <reason>\r\n`.
    pub line: &'static str,
}

macro_rules! statuses {
    ($($name:ident = $code:literal $reason:literal;)*) => {
        impl Status {
            $(
                #[doc = concat!("`", stringify!($code), " ", $reason, "`")]
                pub const $name: Status = Status {
                    code: $code,
                    line: concat!("HTTP/1.1 ", stringify!($code), " ", $reason, "\r\n"),
                };
            )*
        }
    };
}

statuses! {
    CONTINUE = 100 "Continue";
    OK = 200 "OK";
    NO_CONTENT = 204 "No Content";
    NOT_MODIFIED = 304 "Not Modified";
    BAD_REQUEST = 400 "Bad Request";
    FORBIDDEN = 403 "Forbidden";
    NOT_FOUND = 404 "Not Found";
    METHOD_NOT_ALLOWED = 405 "Method Not Allowed";
    REQUEST_TIMEOUT = 408 "Request Timeout";
    PAYLOAD_TOO_LARGE = 413 "Payload Too Large";
    URI_TOO_LONG = 414 "URI Too Long";
    UNSUPPORTED_MEDIA_TYPE = 415 "Unsupported Media Type";
    HEADER_FIELDS_TOO_LARGE = 431 "Request Header Fields Too Large";
    INTERNAL_SERVER_ERROR = 500 "Internal Server Error";
    NOT_IMPLEMENTED = 501 "Not Implemented";
    SERVICE_UNAVAILABLE = 503 "Service Unavailable";
}
