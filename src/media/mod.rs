//! Media: SDP offer/answer and the RTP port pool (DESIGN §4).

pub mod g711;
pub mod port_pool;
pub mod prompt;
pub mod recorder;
pub mod rtp;
pub mod sdp;
