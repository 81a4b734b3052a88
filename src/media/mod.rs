//! Media (DESIGN §4): SDP offer/answer, RTP/RTCP, G.711, DTMF, the jitter
//! buffer, prompts, recording, the RTP port pool and the engine that moves
//! RTP for every call.

pub mod dtmf;
pub mod engine;
pub mod g711;
pub mod jitter;
pub mod port_pool;
pub mod prompt;
pub mod recorder;
pub mod rtp;
pub mod sdp;
