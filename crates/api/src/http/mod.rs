//! The HTTP/JSON front end.
