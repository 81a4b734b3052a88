//! Serializer: start line, one line per header entry, Content-Length, body.
