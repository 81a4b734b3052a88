//! Media: SDP offer/answer and the RTP port pool (DESIGN §4).

pub mod dtmf;
pub mod jitter;
pub mod port_pool;
pub mod sdp;
