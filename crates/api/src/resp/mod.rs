//! The Redis protocol front end.
