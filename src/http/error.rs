//! Request errors and the one place they turn into status codes.

/// Why a request could not be served. Cheap to copy; carries no text, so
/// error answers cost nothing to build.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error {
    /// Not valid HTTP/1.x (bad token, bad line ending, bad version...).
    Malformed,
    /// Request line alone longer than the head limit.
    UriTooLong,
    /// Request line plus headers longer than the head limit, or too many headers.
    HeaderTooLarge,
    /// Declared or received body larger than the endpoint accepts.
    BodyTooLarge,
    /// Invalid chunked framing, or conflicting/invalid Content-Length.
    BadFraming,
    /// The head did not arrive within the header read timeout.
    HeadTimeout,
    /// A transfer coding other than chunked.
    UnsupportedTransferEncoding,
}

impl Error {
    /// Status code and reason phrase answered for this error. The connection
    /// is always closed afterwards: after a framing error the position of the
    /// next request in the stream is unknown.
    pub fn status(self) -> super::Status {
        use super::Status;
        match self {
            Self::Malformed | Self::BadFraming => Status::BAD_REQUEST,
            Self::UriTooLong => Status::URI_TOO_LONG,
            Self::HeaderTooLarge => Status::HEADER_FIELDS_TOO_LARGE,
            Self::BodyTooLarge => Status::PAYLOAD_TOO_LARGE,
            Self::HeadTimeout => Status::REQUEST_TIMEOUT,
            Self::UnsupportedTransferEncoding => Status::NOT_IMPLEMENTED,
        }
    }
}
