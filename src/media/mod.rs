//! Media: SDP offer/answer, RTP, G.711, DTMF, jitter buffer and the RTP port pool (DESIGN §4).

pub mod dtmf;
pub mod engine;
pub mod g711;
pub mod jitter;
pub mod port_pool;
pub mod prompt;
pub mod recorder;
pub mod rtp;
pub mod sdp;
